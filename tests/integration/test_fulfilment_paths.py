"""Fulfilment's less-travelled paths on a real database with the fake gateway.

Each test pins a decision the happy paths leave open: which refunds Stripe must
vouch for, what a retrieved session carries to the order, how a missing session
settles an order, and what a reconciliation pass counts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest

from storefront.evidence import EventResult
from storefront.fulfilment import (
    abort_order,
    apply_event,
    apply_session,
    reconcile,
    sync_order,
)
from storefront.orders import Order, OrderStatus, timestamp
from storefront.payments import CheckoutSession, WebhookEvent
from storefront.store import Store
from tests.fakes import FakePayments


async def with_session(
    db: Store,
    payments: FakePayments,
    name: str,
    *,
    expires_at: int | None = None,
    amount: int = 1800,
) -> Order:
    """A pending order (the 1800 eur mug) with its open fake session."""
    order = await db.open_order(1, 1800, "eur", None, expires_at)
    session_id = f"cs_test_{name}"
    assert await db.attach_session(order.id, session_id)
    payments.sessions[session_id] = CheckoutSession(
        id=session_id,
        url=f"https://pay.example/{session_id}",
        status="open",
        payment_status="unpaid",
        client_reference_id=order.token,
        amount_total=amount,
        currency="eur",
        expires_at=expires_at,
    )
    return await reload(db, order.id)


async def reload(db: Store, order_id: int) -> Order:
    order = await db.order_by_id(order_id)
    assert order is not None
    return order


async def paid(db: Store, payments: FakePayments, name: str) -> Order:
    """An order paid through its session (intent ``pi_cs_test_<name>`` stored)."""
    order = await with_session(db, payments, name)
    payments.complete(f"cs_test_{name}")
    assert await apply_session(db, order.id, payments.sessions[f"cs_test_{name}"], source="test")
    return await reload(db, order.id)


def refund(event_id: str, intent: str, token: str | None = None) -> WebhookEvent:
    """A full refund's charge.refunded event; metadata names the order only with ``token``."""
    charge = {
        "object": "charge",
        "payment_intent": intent,
        "refunded": True,
        "amount": 1800,
        "currency": "eur",
        "metadata": {"order_token": token} if token else {},
    }
    return WebhookEvent(event_id, "charge.refunded", charge)


async def age(db: Store, order_id: int, *, updated: float, created: float | None = None) -> None:
    """Backdate an order: updated (and created) that many seconds ago."""
    await db.execute(
        "UPDATE orders SET updated_at = ? WHERE id = ?",
        (timestamp(time.time() - updated), order_id),
    )
    if created is not None:
        stamp = timestamp(time.time() - created)
        await db.execute("UPDATE orders SET created_at = ? WHERE id = ?", (stamp, order_id))


# Refunds: traced by payment intent, believed only when Stripe's word fits.


async def test_a_refund_naming_only_its_intent_is_traced_to_its_paid_session(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await with_session(db, fake_payments, "traced")
    # Stripe took the money, but the completed event has not arrived yet.
    fake_payments.complete("cs_test_traced")
    asked = list(fake_payments.asked)
    result = await apply_event(db, refund("evt_r1", "pi_cs_test_traced"), fake_payments)
    assert result is EventResult.APPLIED
    now = await reload(db, order.id)
    assert now.status is OrderStatus.REFUNDED
    assert not now.flagged
    # The session found by the intent vouched already: no second look-up.
    assert fake_payments.asked == asked


async def test_a_refund_is_traced_by_session_id_when_the_session_names_no_order(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await with_session(db, fake_payments, "anonymous")
    fake_payments.complete("cs_test_anonymous")
    session = fake_payments.sessions["cs_test_anonymous"]
    fake_payments.sessions["cs_test_anonymous"] = replace(session, client_reference_id=None)
    result = await apply_event(db, refund("evt_r7", "pi_cs_test_anonymous"), fake_payments)
    assert result is EventResult.APPLIED
    assert (await reload(db, order.id)).status is OrderStatus.REFUNDED


async def test_a_session_paid_by_another_intent_does_not_vouch_for_a_refund(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await with_session(db, fake_payments, "other")
    fake_payments.complete("cs_test_other")  # paid by pi_cs_test_other
    event = refund("evt_r2", "pi_someone_else", token=order.token)
    assert await apply_event(db, event, fake_payments) is EventResult.FLAGGED
    now = await reload(db, order.id)
    assert now.status is OrderStatus.PENDING
    assert now.flag_reason == "webhook: refunded refused: refunds an order that was never paid"


async def test_an_order_paid_by_another_intent_is_not_refunded(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await paid(db, fake_payments, "paid_other")
    event = refund("evt_r3", "pi_someone_else", token=order.token)
    assert await apply_event(db, event, fake_payments) is EventResult.FLAGGED
    now = await reload(db, order.id)
    assert now.status is OrderStatus.PAID
    assert now.flag_reason is not None and "paid by another" in now.flag_reason


async def test_a_refund_of_an_order_paid_here_by_that_intent_asks_stripe_nothing(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await paid(db, fake_payments, "paid_here")
    asked = list(fake_payments.asked)
    event = refund("evt_r4", "pi_cs_test_paid_here", token=order.token)
    assert await apply_event(db, event, fake_payments) is EventResult.APPLIED
    assert (await reload(db, order.id)).status is OrderStatus.REFUNDED
    assert fake_payments.asked == asked


async def test_a_refund_of_an_order_known_by_its_intent_needs_no_look_up(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await paid(db, fake_payments, "known_intent")
    # Any call to Stripe now fails: the known intent must make none.
    fake_payments.fail = True
    event = refund("evt_r5", "pi_cs_test_known_intent")
    assert await apply_event(db, event, fake_payments) is EventResult.APPLIED
    assert (await reload(db, order.id)).status is OrderStatus.REFUNDED


async def test_a_refund_of_an_order_known_by_its_token_needs_no_trace(
    db: Store, fake_payments: FakePayments
) -> None:
    # No session yet: nothing for Stripe to vouch with, and no trace by intent either.
    order = await db.open_order(1, 1800, "eur", None)
    fake_payments.fail = True
    event = refund("evt_r6", "pi_unseen", token=order.token)
    assert await apply_event(db, event, fake_payments) is EventResult.FLAGGED
    now = await reload(db, order.id)
    assert now.status is OrderStatus.PENDING
    assert now.flag_reason == "webhook: refunded refused: refunds an order that was never paid"


async def test_an_event_for_no_order_is_logged_as_matching_none(
    db: Store, fake_payments: FakePayments, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storefront.fulfilment")
    event = WebhookEvent(
        "evt_none",
        "checkout.session.expired",
        {"id": "cs_test_nobody", "status": "expired", "amount_total": 1800, "currency": "eur"},
    )
    assert await apply_event(db, event, fake_payments) is EventResult.IGNORED
    assert "event evt_none (checkout.session.expired) matches no order; ignored" in caplog.text


# What a retrieved session carries to its order.


async def test_a_synced_session_stores_its_payment_intent_and_email(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await with_session(db, fake_payments, "sync")
    fake_payments.complete("cs_test_sync")
    now = await sync_order(db, fake_payments, order, source="success page")
    assert now.status is OrderStatus.PAID
    assert now.payment_intent == "pi_cs_test_sync"
    assert now.customer_email == "shopper@example.com"
    found = await db.order_with_timeline(order.token)
    assert found is not None
    assert found[1][-1].source == "success page"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"client_reference_id": "another-token"}, "names another order's token"),
        ({"id": "cs_test_elsewhere"}, "names session cs_test_elsewhere"),
    ],
)
async def test_a_session_naming_another_order_or_session_flags_the_order(
    db: Store, fake_payments: FakePayments, change: dict[str, str], reason: str
) -> None:
    order = await with_session(db, fake_payments, "named")
    fake_payments.complete("cs_test_named")
    session = replace(fake_payments.sessions["cs_test_named"], **change)
    assert await apply_session(db, order.id, session, source="reconcile") is False
    now = await reload(db, order.id)
    assert now.status is OrderStatus.PENDING
    assert now.flag_reason is not None
    assert now.flag_reason.startswith("reconcile: paid refused: ")
    assert reason in now.flag_reason


async def test_apply_session_moves_only_on_a_session_that_says_something(
    db: Store, fake_payments: FakePayments, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storefront.fulfilment")
    order = await with_session(db, fake_payments, "says")
    open_session = fake_payments.sessions["cs_test_says"]
    assert await apply_session(db, order.id, open_session, source="reconcile") is False
    assert (await reload(db, order.id)).status is OrderStatus.PENDING

    fake_payments.complete("cs_test_says")
    wrong = replace(fake_payments.sessions["cs_test_says"], amount_total=999)
    assert await apply_session(db, order.id, wrong, source="reconcile") is False
    assert f"order_id={order.id} flagged from the reconcile" in caplog.text
    assert (await reload(db, order.id)).flagged

    right = fake_payments.sessions["cs_test_says"]
    assert await apply_session(db, order.id, right, source="reconcile") is True
    assert f"order_id={order.id} is paid from the reconcile" in caplog.text
    # Said twice, it moves nothing the second time.
    assert await apply_session(db, order.id, right, source="reconcile") is False


# A session Stripe does not know.


async def test_a_processing_order_whose_session_is_gone_is_flagged_not_expired(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await with_session(db, fake_payments, "gone_processing")
    fake_payments.complete("cs_test_gone_processing", payment_status="unpaid")
    session = fake_payments.sessions.pop("cs_test_gone_processing")
    assert await apply_session(db, order.id, session, source="webhook") is True
    processing = await reload(db, order.id)
    assert processing.status is OrderStatus.PROCESSING

    now = await sync_order(db, fake_payments, processing, source="reconcile")
    assert now.status is OrderStatus.PROCESSING
    assert now.flag_reason == (
        "reconcile: Stripe has no session cs_test_gone_processing (order was processing)"
    )


async def test_a_pending_order_whose_session_is_gone_expires_with_a_note(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await with_session(db, fake_payments, "gone_pending")
    del fake_payments.sessions["cs_test_gone_pending"]
    now = await sync_order(db, fake_payments, order, source="reconcile")
    assert now.status is OrderStatus.EXPIRED
    assert not now.flagged
    found = await db.order_with_timeline(order.token)
    assert found is not None
    last = found[1][-1]
    assert (last.status, last.source, last.note) == (
        OrderStatus.EXPIRED,
        "reconcile",
        "Stripe has no session cs_test_gone_pending",
    )


async def test_timelines_name_the_checkout_and_the_reconciler_as_aborting(
    db: Store, fake_payments: FakePayments
) -> None:
    by_checkout = await db.open_order(1, 1800, "eur", None)
    assert await abort_order(db, by_checkout.id) is True
    by_reconciler = await db.open_order(1, 1800, "eur", None)
    await age(db, by_reconciler.id, updated=1000)
    report = await reconcile(db, fake_payments, older_than=500, in_flight_for=100)
    assert report.aborted == 1
    for order, source in ((by_checkout, "checkout"), (by_reconciler, "reconcile")):
        found = await db.order_with_timeline(order.token)
        assert found is not None
        assert found[0].status is OrderStatus.ABORTED
        assert (found[1][-1].status, found[1][-1].source) == (OrderStatus.ABORTED, source)


# The reconciler.


async def test_an_order_stored_without_expires_at_expires_a_day_after_creation(
    db: Store, fake_payments: FakePayments
) -> None:
    order = await with_session(db, fake_payments, "legacy")
    assert order.expires_at is None
    await age(db, order.id, updated=1000, created=23 * 3600)
    report = await reconcile(db, fake_payments, older_than=500)
    assert (report.checked, report.expired) == (1, 0)
    assert (await reload(db, order.id)).status is OrderStatus.PENDING

    await age(db, order.id, updated=1000, created=25 * 3600)
    report = await reconcile(db, fake_payments, older_than=500)
    assert (report.checked, report.expired) == (1, 1)
    assert (await reload(db, order.id)).status is OrderStatus.EXPIRED


async def test_a_reconcile_pass_counts_each_kind_exactly_across_pages(
    db: Store, fake_payments: FakePayments
) -> None:
    past, future = int(time.time()) - 60, int(time.time()) + 3600
    orders = {}
    for name in ("paid1", "paid2"):
        orders[name] = await with_session(db, fake_payments, name, expires_at=future)
        fake_payments.complete(f"cs_test_{name}")
    for name in ("abandoned1", "abandoned2"):
        orders[name] = await with_session(db, fake_payments, name, expires_at=past)
    for name in ("wrong1", "wrong2"):
        # Stripe says paid, but for another amount: flagged, left pending.
        orders[name] = await with_session(db, fake_payments, name, expires_at=future, amount=999)
        fake_payments.complete(f"cs_test_{name}")
    for name in ("stranded1", "stranded2", "in_flight1", "in_flight2"):
        orders[name] = await db.open_order(1, 1800, "eur", None)
    for name, order in orders.items():
        await age(db, order.id, updated=50 if name.startswith("in_flight") else 1000)

    report = await reconcile(db, fake_payments, older_than=10, batch=3, in_flight_for=100)
    assert (
        report.checked,
        report.changed,
        report.expired,
        report.aborted,
        report.in_flight,
        report.flagged,
    ) == (10, 2, 2, 2, 2, 2)
    statuses = {name: (await reload(db, o.id)).status for name, o in orders.items()}
    assert statuses == {
        "paid1": OrderStatus.PAID,
        "paid2": OrderStatus.PAID,
        "abandoned1": OrderStatus.EXPIRED,
        "abandoned2": OrderStatus.EXPIRED,
        "wrong1": OrderStatus.PENDING,
        "wrong2": OrderStatus.PENDING,
        "stranded1": OrderStatus.ABORTED,
        "stranded2": OrderStatus.ABORTED,
        "in_flight1": OrderStatus.PENDING,
        "in_flight2": OrderStatus.PENDING,
    }


async def test_an_abandoned_session_paid_before_the_next_pass_counts_as_changed(
    db: Store, fake_payments: FakePayments
) -> None:
    past = int(time.time()) - 60
    orders = [await with_session(db, fake_payments, f"late{i}", expires_at=past) for i in (1, 2)]
    for order in orders:
        await age(db, order.id, updated=1000)
    report = await reconcile(db, fake_payments, older_than=10, expire_abandoned=False)
    assert (report.checked, report.changed, report.expired) == (2, 0, 0)
    for i in (1, 2):
        fake_payments.complete(f"cs_test_late{i}")
    # Past expires_at, but paid: the pass moves it to paid, never to expired.
    for order in orders:
        await age(db, order.id, updated=1000)
    report = await reconcile(db, fake_payments, older_than=10)
    assert (report.checked, report.changed, report.expired) == (2, 2, 0)


async def test_a_settled_order_or_one_without_a_session_is_never_asked_about(
    db: Store, fake_payments: FakePayments
) -> None:
    settled = await paid(db, fake_payments, "settled")
    sessionless = await db.open_order(1, 1800, "eur", None)
    asked = list(fake_payments.asked)
    assert await sync_order(db, fake_payments, settled, source="reconcile") == settled
    assert await sync_order(db, fake_payments, sessionless, source="reconcile") == sessionless
    assert fake_payments.asked == asked
