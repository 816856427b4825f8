"""Cross-checking Stripe's word against the order it names (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from storefront.evidence import EventOutcome, mismatch, outcome_from_event
from storefront.orders import OrderStatus

S = OrderStatus
ORDER = {
    "token": "tok",
    "stripe_session_id": "cs_1",
    "amount_total": 2200,
    "currency": "eur",
    "payment_intent": None,
    "status": "pending",
}


def paid(**fields: Any) -> EventOutcome:
    base: dict[str, Any] = {
        "status": S.PAID,
        "session_id": "cs_1",
        "order_token": "tok",
        "payment_intent": "pi_1",
        "amount": 2200,
        "currency": "eur",
    }
    return EventOutcome(**(base | fields))


def test_a_matching_payment_is_believed() -> None:
    assert mismatch(ORDER, paid()) is None
    assert mismatch(ORDER, paid(currency="EUR")) is None  # Stripe's codes are lowercase anyway
    assert mismatch(ORDER | {"stripe_session_id": None}, paid()) is None  # no session stored yet


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (paid(session_id="cs_other"), "names session cs_other"),
        (paid(order_token="someone-else"), "another order's token"),
        (paid(amount=1, currency="usd"), "says 1 usd for an order of 2200 eur"),
        (paid(amount=2200, currency="usd"), "says 2200 usd"),
        (paid(amount=None), "says ? eur"),
        (paid(currency=None), "says 2200 ?"),
        (paid(status=S.PROCESSING, amount=100), "says 100 eur"),
    ],
)
def test_a_payment_that_does_not_match_is_not_believed(outcome: EventOutcome, reason: str) -> None:
    found = mismatch(ORDER, outcome)
    assert found is not None and reason in found


def test_a_payment_by_another_intent_than_the_stored_one_is_not_believed() -> None:
    found = mismatch(ORDER | {"payment_intent": "pi_stored"}, paid())
    assert found is not None and "names payment pi_1" in found


def test_outcomes_that_move_no_money_need_no_amount() -> None:
    expired = EventOutcome(status=S.EXPIRED, session_id="cs_1", order_token="tok")
    assert mismatch(ORDER, expired) is None
    assert mismatch(ORDER, EventOutcome(status=S.EXPIRED, session_id="cs_x")) is not None


def refund(**fields: Any) -> EventOutcome:
    base: dict[str, Any] = {
        "status": S.REFUNDED,
        "payment_intent": "pi_1",
        "amount": 2200,
        "currency": "eur",
    }
    return EventOutcome(**(base | fields))


def test_a_refund_is_believed_for_an_order_paid_by_that_payment_or_vouched_by_stripe() -> None:
    paid_order = ORDER | {"status": "paid", "payment_intent": "pi_1"}
    assert mismatch(paid_order, refund()) is None
    assert mismatch(ORDER, refund(vouched=True)) is None  # the refund overtook the payment


@pytest.mark.parametrize(
    ("order", "outcome", "reason"),
    [
        (ORDER, refund(), "refunds an order that was never paid"),
        (ORDER | {"status": "paid", "payment_intent": "pi_2"}, refund(), "paid by another"),
        (ORDER | {"status": "paid", "payment_intent": "pi_1"}, refund(amount=1), "says 1 eur"),
        (ORDER | {"status": "paid", "payment_intent": "pi_1"}, refund(currency=None), "?"),
    ],
)
def test_a_refund_that_does_not_match_is_not_believed(
    order: dict[str, Any], outcome: EventOutcome, reason: str
) -> None:
    found = mismatch(order, outcome)
    assert found is not None and reason in found


def test_events_carry_their_money() -> None:
    session = {"id": "cs_1", "status": "complete", "payment_status": "paid"}
    outcome = outcome_from_event(
        "checkout.session.completed", session | {"amount_total": 2200, "currency": "eur"}
    )
    assert outcome is not None and (outcome.amount, outcome.currency) == (2200, "eur")
    charge = {"payment_intent": "pi_1", "refunded": True, "amount": 2200, "currency": "eur"}
    outcome = outcome_from_event("charge.refunded", charge)
    assert outcome is not None and (outcome.amount, outcome.currency) == (2200, "eur")


@pytest.mark.parametrize("amount", [True, "2200", 22.0, None, [2200]])
def test_an_amount_of_the_wrong_shape_counts_as_missing(amount: object) -> None:
    session = {"id": "cs_1", "status": "complete", "payment_status": "paid", "currency": "eur"}
    outcome = outcome_from_event("checkout.session.completed", session | {"amount_total": amount})
    assert outcome is not None and outcome.amount is None
