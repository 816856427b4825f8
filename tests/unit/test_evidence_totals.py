"""A cart's payment: Stripe's breakdown is believed only if it adds up (no I/O).

Discounts, shipping and tax are chosen on Stripe's page, so the total is no
longer what we asked; the subtotal is, and the total must be Stripe's own
arithmetic of its parts.
"""

from __future__ import annotations

from typing import Any

import pytest

from storefront.evidence import EventOutcome, mismatch, outcome_from_event
from storefront.orders import OrderStatus

ORDER = {
    "token": "tok",
    "stripe_session_id": "cs_1",
    "amount_total": 5000,
    "amount_subtotal": 5000,
    "amount_paid": None,
    "currency": "eur",
    "payment_intent": None,
    "status": "pending",
}


def session(**fields: Any) -> dict[str, Any]:
    """A completed session's payload: 5000 - 500 + 1500 + 1140 (19 % of 6000) = 7140."""
    base: dict[str, Any] = {
        "id": "cs_1",
        "client_reference_id": "tok",
        "status": "complete",
        "payment_status": "paid",
        "payment_intent": "pi_1",
        "currency": "eur",
        "amount_subtotal": 5000,
        "amount_total": 7140,
        "total_details": {"amount_discount": 500, "amount_shipping": 1500, "amount_tax": 1140},
        "collected_information": {
            "shipping_details": {
                "name": "Ada",
                "address": {"line1": "Main St 1", "city": "Berlin", "country": "DE"},
            }
        },
    }
    return base | fields


def outcome(obj: dict[str, Any]) -> EventOutcome:
    found = outcome_from_event("checkout.session.completed", obj)
    assert found is not None
    return found


def test_a_breakdown_that_adds_up_is_believed_and_read() -> None:
    paid = outcome(session())
    assert mismatch(ORDER, paid) is None
    assert (paid.subtotal, paid.discount, paid.shipping, paid.tax) == (5000, 500, 1500, 1140)
    assert paid.shipping_name == "Ada" and paid.shipping_address["city"] == "Berlin"


def test_tax_inside_the_prices_does_not_add_to_the_total() -> None:
    paid = outcome(session(amount_total=6000))
    assert mismatch(ORDER, paid) is None
    assert paid.tax_exclusive is False


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"amount_total": 9999}, "parts add up to"),
        ({"amount_subtotal": 4000, "amount_total": 6140}, "says 4000 eur for an order of 5000"),
        ({"currency": "usd"}, "for an order of"),
        (
            {"total_details": {"amount_discount": -1, "amount_shipping": 0, "amount_tax": 0}},
            "negative",
        ),
        (
            {
                "amount_total": -1000,
                "total_details": {"amount_discount": 6000, "amount_shipping": 0, "amount_tax": 0},
            },
            "oversized",
        ),
        # Without a breakdown, the total must be what we asked.
        ({"total_details": None}, "says 7140 eur for an order of 5000 eur"),
    ],
)
def test_a_breakdown_that_does_not_add_up_is_flagged(fields: dict[str, Any], reason: str) -> None:
    found = mismatch(ORDER, outcome(session(**fields)))
    assert found is not None and reason in found


def test_a_refund_must_return_what_was_paid() -> None:
    paid_order = ORDER | {"status": "paid", "payment_intent": "pi_1", "amount_paid": 7140}
    refund = EventOutcome(
        status=OrderStatus.REFUNDED, payment_intent="pi_1", amount=7140, currency="eur"
    )
    assert mismatch(paid_order, refund) is None
    wrong = EventOutcome(
        status=OrderStatus.REFUNDED, payment_intent="pi_1", amount=5000, currency="eur"
    )
    assert "says 5000" in (mismatch(paid_order, wrong) or "")


# The shipping a paid session charges must be one the shop offered that session.


def _row_offered(offered: str | None, subtotal: int = 1000) -> dict[str, object]:
    return {
        "stripe_session_id": "cs_1",
        "token": "tok",
        "currency": "eur",
        "amount_total": subtotal,
        "amount_paid": None,
        "payment_intent": None,
        "status": "pending",
        "shipping_offered": offered,
    }


def _paid_with_shipping(shipping: int, subtotal: int = 1000) -> EventOutcome:
    return EventOutcome(
        status=OrderStatus.PAID,
        session_id="cs_1",
        order_token="tok",
        amount=subtotal + shipping,
        currency="eur",
        subtotal=subtotal,
        discount=0,
        shipping=shipping,
        tax=0,
    )


@pytest.mark.parametrize(
    ("offered", "shipping", "flagged"),
    [
        ("500,1500", 500, False),
        ("500,1500", 1500, False),
        ("500,1500", 700, True),
        ("500,1500", 0, True),
        ("0,900", 0, False),
        ("", 0, False),
        ("", 500, True),
        (None, 700, False),  # an order from before the offer was recorded: not checked
    ],
)
def test_paid_shipping_must_be_a_rate_the_shop_offered(
    offered: str | None, shipping: int, flagged: bool
) -> None:
    reason = mismatch(_row_offered(offered), _paid_with_shipping(shipping))
    assert (reason is not None) == flagged
    if flagged:
        assert reason is not None and "for shipping, but the shop offered" in reason


def test_a_refund_is_never_held_to_the_shipping_offer() -> None:
    row = {**_row_offered("500"), "status": "paid", "payment_intent": "pi_1", "amount_paid": 1700}
    refund = EventOutcome(
        status=OrderStatus.REFUNDED, payment_intent="pi_1", amount=1700, currency="eur"
    )
    assert mismatch(row, refund) is None
