"""The order state machine and the mapping from Stripe's objects to it."""

from __future__ import annotations

import pytest

from storefront.evidence import outcome_from_event, status_from_session
from storefront.orders import OrderStatus, can_transition, is_recovery, next_status

S = OrderStatus


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.PENDING, S.PAID),
        (S.PENDING, S.PROCESSING),
        (S.PROCESSING, S.PAID),
        (S.PROCESSING, S.FAILED),
        (S.PENDING, S.EXPIRED),
        (S.PAID, S.REFUNDED),
        (S.PENDING, S.ABORTED),
    ],
)
def test_forward_transitions_are_allowed(current: OrderStatus, new: OrderStatus) -> None:
    assert can_transition(current, new)
    assert next_status(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.PAID, S.EXPIRED),  # a late expiry never undoes a payment
        (S.PAID, S.PROCESSING),  # completed(unpaid) arriving after async success
        (S.PAID, S.PAID),  # a duplicate
        (S.REFUNDED, S.PAID),
        (S.PROCESSING, S.PENDING),
        (S.PROCESSING, S.EXPIRED),
        (S.FAILED, S.PROCESSING),  # a late completed (unpaid) after the debit failed
        (S.EXPIRED, S.ABORTED),
        (S.ABORTED, S.EXPIRED),
    ],
)
def test_backward_or_repeated_transitions_change_nothing(
    current: OrderStatus, new: OrderStatus
) -> None:
    assert not can_transition(current, new)
    assert next_status(current, new) is current


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.ABORTED, S.PAID),  # aborted while its checkout was in flight, then paid
        (S.EXPIRED, S.PAID),
        (S.FAILED, S.PAID),
        (S.ABORTED, S.PROCESSING),
        (S.EXPIRED, S.PROCESSING),
        (S.EXPIRED, S.REFUNDED),
    ],
)
def test_stripes_evidence_of_money_overrules_an_order_we_gave_up_on(
    current: OrderStatus, new: OrderStatus
) -> None:
    assert can_transition(current, new) and is_recovery(current, new)
    assert next_status(current, new) is new


def test_ordinary_moves_are_not_recoveries() -> None:
    assert not is_recovery(S.PENDING, S.PAID)
    assert not is_recovery(S.PROCESSING, S.PAID)
    assert not is_recovery(S.PAID, S.REFUNDED)


def test_none_changes_nothing() -> None:
    assert next_status(S.PENDING, None) is S.PENDING


def test_only_pending_and_processing_keep_the_receipt_polling() -> None:
    assert {s for s in S if not s.is_final} == {S.PENDING, S.PROCESSING}


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        ({"status": "open", "payment_status": "unpaid"}, None),
        ({"status": "complete", "payment_status": "paid"}, S.PAID),
        ({"status": "complete", "payment_status": "no_payment_required"}, S.PAID),
        ({"status": "complete", "payment_status": "unpaid"}, S.PROCESSING),
        ({"status": "expired", "payment_status": "unpaid"}, S.EXPIRED),
    ],
)
def test_status_from_session(session: dict[str, str], expected: OrderStatus | None) -> None:
    assert status_from_session(session) is expected


def test_completed_event_carries_what_finds_the_order() -> None:
    outcome = outcome_from_event(
        "checkout.session.completed",
        {
            "id": "cs_test_1",
            "status": "complete",
            "payment_status": "paid",
            "client_reference_id": "tok",
            "payment_intent": "pi_1",
            "customer_details": {"email": "a@example.com"},
        },
    )
    assert outcome is not None
    assert outcome.status is S.PAID
    assert (outcome.session_id, outcome.order_token, outcome.payment_intent) == (
        "cs_test_1",
        "tok",
        "pi_1",
    )
    assert outcome.customer_email == "a@example.com"


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("checkout.session.async_payment_succeeded", S.PAID),
        ("checkout.session.async_payment_failed", S.FAILED),
        ("checkout.session.expired", S.EXPIRED),
    ],
)
def test_session_events(event_type: str, expected: OrderStatus) -> None:
    outcome = outcome_from_event(event_type, {"id": "cs_test_1", "status": "complete"})
    assert outcome is not None and outcome.status is expected


def test_full_refund_refunds_and_partial_is_recorded_not_refunded() -> None:
    full = outcome_from_event("charge.refunded", {"refunded": True, "payment_intent": "pi_1"})
    partial = outcome_from_event("charge.refunded", {"refunded": False, "payment_intent": "pi_1"})
    assert full is not None and full.status is S.REFUNDED and full.payment_intent == "pi_1"
    # A partial refund leaves the order paid and records the refunded amount.
    assert partial is not None and partial.partial and not full.partial


def test_other_events_are_not_ours() -> None:
    assert outcome_from_event("customer.created", {"id": "cus_1"}) is None
    assert outcome_from_event("checkout.session.unknown", {"id": "cs_1"}) is None
