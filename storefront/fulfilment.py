"""Applying what Stripe says to our orders: one idempotent path for every caller.

The webhook, the receipt page, the cancel page and the reconciler all end in
``orders.transition``, whose conditional update lets exactly one caller win.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from storefront import orders
from storefront.db import Database
from storefront.orders import EventOutcome, Order, OrderStatus
from storefront.payments import CheckoutSession, PaymentError, PaymentGateway, WebhookEvent

log = logging.getLogger(__name__)


class EventResult(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"  # a late or repeated outcome; the order stays put
    IGNORED = "ignored"  # not an event, or not an order, of ours


async def apply_event(
    db: Database, event: WebhookEvent, payments: PaymentGateway | None = None
) -> EventResult:
    """Record a verified event and apply its transition, in one transaction.

    With ``payments``, an event that names only a payment intent we have not
    stored yet is traced back to its session first; a PaymentError from that
    look-up propagates (nothing is recorded, so Stripe's retry tries again).
    """
    outcome = orders.outcome_from_event(event.type, event.object)
    if outcome is not None and payments is not None:
        outcome = await _trace_to_session(db, payments, outcome)
    result, order_id = await db.write(_record_and_apply, event, outcome)
    if result is EventResult.APPLIED:
        assert outcome is not None
        log.info("order_id=%s is %s by event %s", order_id, outcome.status, event.id)
    elif result is EventResult.IGNORED and outcome is not None:
        log.info("event %s (%s) matches no order; ignored", event.id, event.type)
    return result


def _record_and_apply(
    conn: sqlite3.Connection, event: WebhookEvent, outcome: EventOutcome | None
) -> tuple[EventResult, int | None]:
    # One transaction: the event id is recorded only together with its effect.
    if not orders.record_webhook_event(conn, event.id, event.type):
        return EventResult.DUPLICATE, None
    if outcome is None:
        return EventResult.IGNORED, None
    order_id = orders.find_order_id(
        conn,
        session_id=outcome.session_id,
        order_token=outcome.order_token,
        payment_intent=outcome.payment_intent,
    )
    if order_id is None:
        return EventResult.IGNORED, None
    moved = orders.transition(
        conn,
        order_id,
        outcome.status,
        source="webhook",
        stripe_event_id=event.id,
        payment_intent=outcome.payment_intent,
        customer_email=outcome.customer_email,
    )
    return (EventResult.APPLIED if moved else EventResult.UNCHANGED), order_id


async def _trace_to_session(
    db: Database, payments: PaymentGateway, outcome: EventOutcome
) -> EventOutcome:
    # A refund's charge may overtake the completed event that stores the
    # payment intent, and a charge need not carry our metadata: ask Stripe
    # which session made the intent (Pay's re-fetch). Never inside the write
    # transaction, which must not wait on the network.
    if outcome.session_id or not outcome.payment_intent:
        return outcome
    if await orders.is_known(
        db, order_token=outcome.order_token, payment_intent=outcome.payment_intent
    ):
        return outcome
    session = await payments.find_session_by_payment_intent(outcome.payment_intent)
    if session is None:
        return outcome
    return dataclasses.replace(
        outcome, session_id=session.id, order_token=session.client_reference_id
    )


async def apply_session(
    db: Database, order_id: int, session: CheckoutSession, *, source: str
) -> bool:
    """Apply a retrieved session's state to its order; True if the order moved."""
    status = orders.status_from_session(
        {"status": session.status, "payment_status": session.payment_status}
    )
    if status is None:
        return False
    moved = await db.write(
        orders.transition,
        order_id,
        status,
        source=source,
        payment_intent=session.payment_intent,
        customer_email=session.customer_email,
    )
    if moved:
        log.info("order_id=%s is %s from the %s", order_id, status, source)
    return moved


async def sync_order(
    db: Database, payments: PaymentGateway, order: Order, *, source: str
) -> Order:
    """Ask Stripe how the order's session stands and apply it; return the order now."""
    if order.status.is_final or not order.stripe_session_id:
        return order
    try:
        session = await payments.retrieve_session(order.stripe_session_id)
    except PaymentError as error:
        log.warning("order_id=%s: could not retrieve its session: %s", order.id, error)
        return order
    if session.client_reference_id not in (None, order.token):
        log.error("order_id=%s: session %s belongs to another order", order.id, session.id)
        return order
    await apply_session(db, order.id, session, source=source)
    return await orders.get_by_id(db, order.id) or order


async def abort_order(db: Database, order_id: int) -> None:
    """Mark an order whose checkout never started, so it is not left pending."""
    await db.write(orders.transition, order_id, OrderStatus.ABORTED, source="checkout")


async def cancel_order(db: Database, payments: PaymentGateway, order: Order) -> Order:
    """Expire the order's open session so it cannot be paid; paid meanwhile wins."""
    if order.status is not OrderStatus.PENDING or not order.stripe_session_id:
        return order
    try:
        session = await payments.expire_session(order.stripe_session_id)
    except PaymentError as error:
        # Usually: the session is no longer open (paid, or expired already).
        log.info("order_id=%s: expire refused (%s); asking Stripe", order.id, error)
        return await sync_order(db, payments, order, source="cancel page")
    await apply_session(db, order.id, session, source="cancel page")
    return await orders.get_by_id(db, order.id) or order


@dataclass
class ReconcileReport:
    """What one reconciliation pass looked at and changed."""

    checked: int = 0
    changed: int = 0
    expired: int = 0
    aborted: int = 0


async def reconcile(
    db: Database,
    payments: PaymentGateway,
    *,
    older_than: float,
    expire_abandoned: bool = True,
    batch: int = 100,
) -> ReconcileReport:
    """Converge stale open orders on Stripe's truth; expire abandoned sessions."""
    report = ReconcileReport()
    last_id = 0
    while page := await orders.stale_open_orders(db, older_than, batch, after_id=last_id):
        last_id = page[-1].id
        for order in page:
            await _reconcile_one(db, payments, order, report, expire_abandoned)
    return report


async def _reconcile_one(
    db: Database,
    payments: PaymentGateway,
    order: Order,
    report: ReconcileReport,
    expire_abandoned: bool,
) -> None:
    """Check one stale open order with Stripe and count what changed."""
    report.checked += 1
    if not order.stripe_session_id:
        # The shop stopped between creating the order and the session.
        await abort_order(db, order.id)
        report.aborted += 1
        return
    now = await sync_order(db, payments, order, source="reconcile")
    if now.status is not order.status:
        report.changed += 1
    elif expire_abandoned and now.status is OrderStatus.PENDING:
        after = await cancel_order(db, payments, now)
        if after.status is OrderStatus.EXPIRED:
            report.expired += 1
        elif after.status is not now.status:
            report.changed += 1
