"""The typed resources on their own: transitions, refunds, and what each renders."""

from __future__ import annotations

import pytest
import stripe

from storefront.sandbox.errors import StripeApiError
from storefront.sandbox.resources import CheckoutSession, LineItem, MethodDetails
from tests.stripe_schema import problems

NOW = 1_800_000_000
CARD = MethodDetails(type="card", email="ada@example.com", name="Ada")
DEBIT = MethodDetails(
    type="sepa_debit", email="ada@example.com", name="Ada", last4="3000", country="DE"
)


def open_session(unit_amount: int = 1999, quantity: int = 2) -> CheckoutSession:
    line = LineItem("Mug", None, (), "eur", unit_amount, quantity, NOW)
    return CheckoutSession(
        created=NOW,
        expires_at=NOW + 3600,
        currency="eur",
        line_items=(line,),
        success_url="https://example.com/ok",
        cancel_url=None,
        client_reference_id=None,
        customer_email=None,
        locale=None,
        metadata={},
        payment_method_types=["card", "sepa_debit"],
        allowed_payment_method_types=None,
        excluded_payment_method_types=None,
        payment_intent_metadata={"order_id": "42"},
        payment_intent_description=None,
        public_base="http://127.0.0.1:1",
    )


def test_a_card_payment_pays_at_once_and_renders_valid_objects() -> None:
    session = open_session()
    assert session.complete(CARD, NOW + 1) is False
    assert (session.status, session.payment_status, session.url) == ("complete", "paid", None)
    assert session.charge is not None and session.charge.amount == 3998
    assert session.charge.metadata == {"order_id": "42"}
    body = session.to_stripe({"line_items", "payment_intent"})
    assert body["payment_intent"]["latest_charge"] == session.charge.id
    assert problems(body, stripe.checkout.Session) == []
    assert problems(session.charge.to_stripe(), stripe.Charge) == []


@pytest.mark.parametrize(("succeeded", "status"), [(True, "paid"), (False, "unpaid")])
def test_a_debit_completes_unpaid_then_settles(succeeded: bool, status: str) -> None:
    session = open_session()
    assert session.complete(DEBIT, NOW) is True
    assert session.payment_status == "unpaid" and session.charge is None
    session.settle(succeeded, NOW + 5)
    assert session.payment_status == status
    intent = session.to_stripe({"payment_intent"})["payment_intent"]
    assert intent["status"] == ("succeeded" if succeeded else "requires_payment_method")
    assert (intent["last_payment_error"] is None) is succeeded
    assert problems(intent, stripe.PaymentIntent) == []
    with pytest.raises(ValueError, match="no payment waiting"):
        session.settle(succeeded, NOW + 6)


def test_a_free_session_needs_no_payment() -> None:
    assert open_session(unit_amount=0).payment_status == "no_payment_required"


def test_expiring_twice_is_stripes_400_and_changes_nothing() -> None:
    session = open_session()
    session.expire()
    assert (session.status, session.url) == ("expired", None)
    with pytest.raises(StripeApiError) as caught:
        session.expire()
    assert caught.value.status == 400
    assert session.status == "expired"


def test_refunds_lower_the_charge_until_nothing_is_left() -> None:
    session = open_session()
    with pytest.raises(StripeApiError):
        session.refund(None, NOW, {}, None)  # nothing paid yet
    session.complete(CARD, NOW)
    charge = session.charge
    assert charge is not None
    with pytest.raises(StripeApiError) as caught:
        session.refund(5000, NOW, {}, None)
    assert caught.value.param == "amount" and charge.amount_refunded == 0
    first = session.refund(1000, NOW, {"why": "late"}, None)
    assert charge.changed_by(first) == {"amount_refunded": 0}
    assert not charge.refunded
    rest = session.refund(None, NOW, {}, "requested_by_customer")
    assert rest.amount == 2998 and charge.refunded
    assert charge.changed_by(rest) == {"amount_refunded": 1000, "refunded": False}
    assert [r.id for r in charge.refunds] == [rest.id, first.id]
    assert problems(rest.to_stripe(), stripe.Refund) == []
    with pytest.raises(StripeApiError) as caught:
        session.refund(None, NOW, {}, None)
    assert caught.value.code == "charge_already_refunded"


def test_authentication_is_held_then_dropped() -> None:
    session = open_session()
    session.await_authentication(CARD)
    pending = session.drop_authentication()
    assert pending is not None and pending.form_values() == {
        "email": "ada@example.com",
        "name": "Ada",
    }
    assert session.pending_auth is None and session.status == "open"


def test_a_debit_charge_shows_the_account_not_the_iban() -> None:
    session = open_session()
    session.complete(DEBIT, NOW)
    session.settle(True, NOW)
    assert session.charge is not None
    details = session.charge.to_stripe()["payment_method_details"]
    assert details["type"] == "sepa_debit" and "card" not in details
    assert details["sepa_debit"]["last4"] == "3000"
    assert details["sepa_debit"]["mandate"].startswith("mandate_")
