"""The order state machine under duplicated and shuffled events (property-based)."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storefront.catalog import NewProduct
from storefront.fulfilment import EventResult, apply_event
from storefront.orders import OrderStatus, can_transition, next_status
from storefront.payments import CheckoutSession, WebhookEvent
from storefront.store import Store
from storefront.store.postgres import PostgresStore
from storefront.store.sqlite import SQLiteStore
from tests.fakes import FakePayments
from tests.pg import Cluster
from tests.shop import WEBHOOK_SECRET

# Realistic Stripe sequences for one Checkout Session, in the order Stripe emits them.
SCENARIOS: dict[str, tuple[str, ...]] = {
    "card": ("completed_paid",),
    "card_refunded": ("completed_paid", "refunded"),
    "debit_ok": ("completed_unpaid", "async_succeeded"),
    "debit_failed": ("completed_unpaid", "async_failed"),
    "debit_ok_refunded": ("completed_unpaid", "async_succeeded", "refunded"),
    "expired": ("expired",),
}

# What each kind of event asks for, as outcome_from_event reads it.
ASKS = {
    "completed_paid": OrderStatus.PAID,
    "completed_unpaid": OrderStatus.PROCESSING,
    "async_succeeded": OrderStatus.PAID,
    "async_failed": OrderStatus.FAILED,
    "refunded": OrderStatus.REFUNDED,
    "expired": OrderStatus.EXPIRED,
}


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[tuple[str, ...], list[int]]:
    """A scenario and a delivery order: each event 1-3 times, shuffled."""
    scenario = draw(st.sampled_from(sorted(SCENARIOS)))
    events = SCENARIOS[scenario]
    copies = [i for i in range(len(events)) for _ in range(draw(st.integers(1, 3)))]
    return events, draw(st.permutations(copies))


def fold(kinds: Sequence[str]) -> tuple[OrderStatus, list[OrderStatus]]:
    """Apply events with next_status; return the final status and the transitions made."""
    status, path = OrderStatus.PENDING, [OrderStatus.PENDING]
    for kind in kinds:
        new = next_status(status, ASKS[kind])
        if new is not status:
            path.append(new)
        status = new
    return status, path


def assert_clean_path(path: Sequence[OrderStatus], final: OrderStatus) -> None:
    """A timeline starts pending, moves only forward, never repeats, ends where the order is."""
    assert path[0] is OrderStatus.PENDING
    assert len(set(path)) == len(path), path
    for before, after in itertools.pairwise(path):
        assert can_transition(before, after), path
    assert path[-1] is final


@settings(max_examples=400)
@given(deliveries())
def test_next_status_converges_whatever_the_delivery_order(
    case: tuple[tuple[str, ...], list[int]],
) -> None:
    events, order = case
    expected, _ = fold(events)
    final, path = fold([events[i] for i in order])
    assert final is expected
    assert_clean_path(path, final)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(sorted(ASKS)), max_size=12))
def test_next_status_never_moves_backwards(kinds: list[str]) -> None:
    # Any sequence at all (even ones Stripe never sends) keeps the path forward-only.
    final, path = fold(kinds)
    assert_clean_path(path, final)
    assert all(next_status(s, None) is s for s in OrderStatus)


def stripe_event(
    kind: str, event_id: str, ids: dict[str, str], charge_metadata: bool
) -> WebhookEvent:
    """A Stripe event of ``kind`` about one session, shaped as Stripe sends it."""
    session: dict[str, Any] = {
        "id": ids["session"],
        "object": "checkout.session",
        "client_reference_id": ids["token"],
        "metadata": {"order_token": ids["token"]},
        "payment_intent": ids["intent"],
        "customer_details": {"email": "shopper@example.com"},
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 1800,
        "currency": "eur",
    }
    if kind == "completed_paid":
        return WebhookEvent(event_id, "checkout.session.completed", session)
    if kind == "completed_unpaid":
        return WebhookEvent(
            event_id, "checkout.session.completed", {**session, "payment_status": "unpaid"}
        )
    if kind == "async_succeeded":
        return WebhookEvent(event_id, "checkout.session.async_payment_succeeded", session)
    if kind == "async_failed":
        return WebhookEvent(
            event_id,
            "checkout.session.async_payment_failed",
            {**session, "payment_status": "unpaid"},
        )
    if kind == "expired":
        expired = {**session, "status": "expired", "payment_status": "unpaid"}
        return WebhookEvent(
            event_id, "checkout.session.expired", {**expired, "payment_intent": None}
        )
    assert kind == "refunded"
    charge = {
        "id": f"ch_{ids['intent']}",
        "object": "charge",
        "payment_intent": ids["intent"],
        "amount": 1800,
        "currency": "eur",
        "amount_refunded": 1800,
        "refunded": True,
        # Stripe copies the intent's metadata onto its charge; tolerate a charge without.
        "metadata": {"order_token": ids["token"]} if charge_metadata else {},
    }
    return WebhookEvent(event_id, "charge.refunded", charge)


async def open_order(db: Store, payments: FakePayments, name: str) -> dict[str, str]:
    """A pending order with its (fake) session, as checkout leaves it."""
    order = await db.open_order(1, 1800, "eur", None)
    session_id, intent = f"cs_test_{name}", f"pi_{name}"
    await db.attach_session(order.id, session_id)
    # The gateway can trace the payment intent back to the session (the refund look-up).
    payments.sessions[session_id] = CheckoutSession(
        id=session_id,
        url=None,
        status="complete",
        payment_status="paid",
        client_reference_id=order.token,
        payment_intent=intent,
        amount_total=1800,
        currency="eur",
    )
    return {"id": str(order.id), "token": order.token, "session": session_id, "intent": intent}


async def timeline(db: Store, token: str) -> list[OrderStatus]:
    found = await db.order_with_timeline(token)
    assert found is not None
    return [e.status for e in found[1]]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@settings(max_examples=60, deadline=None)
@given(case=deliveries(), charge_metadata=st.booleans())
async def test_apply_event_on_each_store_converges_and_records_each_transition_once(
    backend: str,
    pg_cluster: Cluster,
    case: tuple[tuple[str, ...], list[int]],
    charge_metadata: bool,
) -> None:
    events, order = case
    with tempfile.TemporaryDirectory() as tmp:
        db: Store = (
            SQLiteStore(Path(tmp) / "shop.sqlite3")
            if backend == "sqlite"
            else PostgresStore(pg_cluster.new_database())
        )
        await db.open()
        try:
            await db.save_products([NewProduct("mug", "Mug", 1800, "eur")])
            payments = FakePayments(WEBHOOK_SECRET)
            shuffled = await open_order(db, payments, "shuffled")
            ordered = await open_order(db, payments, "ordered")

            results = []
            for i in order:
                event = stripe_event(events[i], f"evt_s{i}", shuffled, charge_metadata)
                results.append(await apply_event(db, event, payments))
            for i, kind in enumerate(events):
                event = stripe_event(kind, f"evt_o{i}", ordered, charge_metadata)
                await apply_event(db, event, payments)

            expected, _ = fold(events)
            for ids in (shuffled, ordered):
                found = await db.order_with_timeline(ids["token"])
                assert found is not None and found[0].status is expected
                assert_clean_path(await timeline(db, ids["token"]), expected)
            # Each delivery of an event id after the first is recognised as a duplicate.
            assert results.count(EventResult.DUPLICATE) == len(order) - len(events)
            applied = results.count(EventResult.APPLIED)
            assert applied == len(await timeline(db, shuffled["token"])) - 1
            seen = await db.fetch_one("SELECT count(*) AS n FROM webhook_events")
            assert seen is not None and seen["n"] == 2 * len(events)
        finally:
            await db.close()


@settings(max_examples=200)
@given(
    start=st.sampled_from(sorted(OrderStatus)),
    kinds=st.lists(st.sampled_from(sorted(ASKS)), max_size=8),
)
def test_a_payment_is_never_unchanged_unless_the_order_already_shows_it(
    start: OrderStatus, kinds: list[str]
) -> None:
    # Whatever happened before (even an order we gave up on), Stripe's word that
    # money was taken lands the order on paid, unless it already is paid or refunded.
    status = start
    for kind in kinds:
        status = next_status(status, ASKS[kind])
    after = next_status(status, OrderStatus.PAID)
    if status in (OrderStatus.PAID, OrderStatus.REFUNDED):
        assert after is status
    else:
        assert after is OrderStatus.PAID
