"""Applying what Stripe says to our orders: one idempotent path for every caller.

The webhook, the receipt page, the cancel page and the reconciler all end in
the store's ``transition``, whose conditional update lets exactly one caller win.
Before anything moves, ``evidence.mismatch`` checks Stripe's word against the
order; a mismatch flags the order instead of moving it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from storefront import evidence
from storefront.evidence import EventOutcome, EventResult
from storefront.orders import Order, OrderStatus
from storefront.payments import CheckoutSession, PaymentError, PaymentGateway, WebhookEvent
from storefront.store import Store

log = logging.getLogger(__name__)

# Stripe's default session lifetime, for orders stored before expires_at was.
DEFAULT_SESSION_LIFETIME = 24 * 60 * 60


async def apply_event(
    db: Store,
    event: WebhookEvent,
    payments: PaymentGateway | None = None,
    *,
    lines_due: Callable[[int], None] | None = None,
) -> EventResult:
    """Record a verified event and apply its transition, in one transaction.

    With ``payments``, a refund is first traced to its session and checked
    with Stripe when our order does not show it paid; a PaymentError from
    those look-ups propagates (nothing is recorded, so Stripe's retry tries again).
    Stripe's line items are never asked for here: a move that leaves them due
    calls ``lines_due`` with the order's id (the line-items task's wake-up),
    and the caller answers at once.
    """
    dispute = evidence.dispute_from_event(event.type, event.object)
    if dispute is not None:
        result, order_id = await db.record_dispute(event.id, event.type, dispute)
        if order_id is not None:
            log.warning(
                "order_id=%s flagged: dispute %s is %s", order_id, dispute.id, dispute.status
            )
        return result
    outcome = evidence.outcome_from_event(event.type, event.object)
    if outcome is not None and payments is not None:
        outcome = await _trace_to_session(db, payments, outcome)
        outcome = await _vouch_for_refund(db, payments, outcome)
    result, order_id, reason = await db.record_and_apply(event.id, event.type, outcome)
    if result is EventResult.APPLIED and order_id is not None and lines_due is not None:
        assert outcome is not None
        if _needs_line_items(outcome):
            lines_due(order_id)
    if result is EventResult.FLAGGED:
        log.warning(
            "order_id=%s flagged by event %s (%s): %s", order_id, event.id, event.type, reason
        )
    elif result is EventResult.APPLIED:
        assert outcome is not None
        log.info("order_id=%s is %s by event %s", order_id, outcome.status, event.id)
    elif result is EventResult.IGNORED and outcome is not None:
        log.info("event %s (%s) matches no order; ignored", event.id, event.type)
    return result


async def _trace_to_session(
    db: Store, payments: PaymentGateway, outcome: EventOutcome
) -> EventOutcome:
    # A refund's charge may overtake the completed event that stores the
    # payment intent, and a charge need not carry our metadata: ask Stripe
    # which session made the intent (Pay's re-fetch). Never inside the write
    # transaction, which must not wait on the network.
    if outcome.session_id or not outcome.payment_intent:
        return outcome
    if await db.is_known(order_token=outcome.order_token, payment_intent=outcome.payment_intent):
        return outcome
    session = await payments.find_session_by_payment_intent(outcome.payment_intent)
    if session is None:
        return outcome
    return dataclasses.replace(
        outcome,
        session_id=session.id,
        order_token=session.client_reference_id,
        vouched=_pays(session, outcome.payment_intent),
    )


def _needs_line_items(outcome: EventOutcome) -> bool:
    # A webhook's session carries no line items; the move priced the lines
    # itself only when Stripe states no discount and no tax.
    money = (OrderStatus.PAID, OrderStatus.PROCESSING)
    if outcome.status not in money or outcome.lines or not outcome.session_id:
        return False
    return not (outcome.discount == 0 and outcome.tax == 0)


def _pays(session: CheckoutSession, payment_intent: str | None) -> bool:
    return session.payment_status == "paid" and session.payment_intent == payment_intent


async def _vouch_for_refund(
    db: Store, payments: PaymentGateway, outcome: EventOutcome
) -> EventOutcome:
    # A refund is believed for an order we saw paid by that very payment. For
    # any other order (the refund overtook the payment's event), Stripe must
    # confirm that the order's own session was paid by it.
    if outcome.status is not OrderStatus.REFUNDED or outcome.vouched:
        return outcome
    order = await db.find_order(
        session_id=outcome.session_id,
        order_token=outcome.order_token,
        payment_intent=outcome.payment_intent,
    )
    if order is None or not order.stripe_session_id:
        return outcome
    if order.status is OrderStatus.PAID and order.payment_intent == outcome.payment_intent:
        return outcome
    try:
        session = await payments.retrieve_session(order.stripe_session_id)
    except PaymentError as error:
        if not error.missing:
            raise
        return outcome
    return dataclasses.replace(outcome, vouched=_pays(session, outcome.payment_intent))


def session_outcome(session: CheckoutSession) -> EventOutcome | None:
    """What a retrieved session says about its order (None: still open)."""
    status = evidence.status_from_session(
        {"status": session.status, "payment_status": session.payment_status}
    )
    if status is None:
        return None
    return EventOutcome(
        status=status,
        session_id=session.id,
        order_token=session.client_reference_id,
        payment_intent=session.payment_intent,
        customer_email=session.customer_email,
        amount=session.amount_total,
        currency=session.currency,
        **vars(session.totals),
    )


async def apply_session(
    db: Store, order_id: int, session: CheckoutSession, *, source: str
) -> bool:
    """Apply a retrieved session's state to its order; True if the order moved."""
    outcome = session_outcome(session)
    if outcome is None:
        return False
    result, reason, moved = await db.apply_outcome(order_id, outcome, source)
    if result is EventResult.FLAGGED:
        log.warning("order_id=%s flagged from the %s: %s", order_id, source, reason)
    elif moved:
        log.info("order_id=%s is %s from the %s", order_id, outcome.status, source)
    return moved


async def sync_order(db: Store, payments: PaymentGateway, order: Order, *, source: str) -> Order:
    """Ask Stripe how the order's session stands and apply it; return the order now.

    Orders we gave up on (aborted, expired, failed) are asked about too: if
    Stripe took the money after all, its word wins and the order is flagged.
    """
    if order.status.is_settled or not order.stripe_session_id:
        return order
    try:
        session = await payments.retrieve_session(order.stripe_session_id)
    except PaymentError as error:
        if error.missing:
            await _settle_missing(db, order, source)
            return await db.order_by_id(order.id) or order
        # Never settle on a network error or an outage: Stripe may yet answer.
        log.warning("order_id=%s: could not retrieve its session: %s", order.id, error)
        return order
    await apply_session(db, order.id, session, source=source)
    return await db.order_by_id(order.id) or order


async def _settle_missing(db: Store, order: Order, source: str) -> None:
    """Stripe says the order's session does not exist: no one can pay it."""
    note = f"Stripe has no session {order.stripe_session_id}"
    if order.status is OrderStatus.PENDING:
        moved = await db.transition(order.id, OrderStatus.EXPIRED, source=source, note=note)
        if moved:
            log.warning("order_id=%s expired: %s", order.id, note)
    elif order.status is OrderStatus.PROCESSING:
        # Money may be on its way: a person must look, not the machine.
        await db.flag(order.id, f"{source}: {note} (order was processing)")
        log.warning("order_id=%s flagged: %s while processing", order.id, note)


async def abort_order(db: Store, order_id: int) -> bool:
    """Mark an order whose checkout failed before it had a session; True if it moved."""
    return bool(await db.abort_without_session(order_id, untouched_for=0.0, source="checkout"))


async def cancel_order(db: Store, payments: PaymentGateway, order: Order) -> Order:
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
    return await db.order_by_id(order.id) or order


def session_expires_at(order: Order) -> float:
    """When the order's session stops taking payments (unix seconds)."""
    if order.expires_at is not None:
        return float(order.expires_at)
    created = dt.datetime.fromisoformat(order.created_at.replace("Z", "+00:00"))
    return created.timestamp() + DEFAULT_SESSION_LIFETIME


@dataclass
class ReconcileReport:
    """What one reconciliation pass looked at and changed."""

    checked: int = 0
    changed: int = 0
    expired: int = 0
    aborted: int = 0
    in_flight: int = 0  # no session yet, but a checkout call may still be running
    flagged: int = 0


async def reconcile(
    db: Store,
    payments: PaymentGateway,
    *,
    older_than: float,
    expire_abandoned: bool = True,
    batch: int = 100,
    in_flight_for: float | None = None,
) -> ReconcileReport:
    """Converge stale open orders on Stripe's truth; expire abandoned sessions.

    An order without a session is aborted only once no checkout call for it
    can still be running: ``in_flight_for`` seconds (default: the gateway's
    longest call) after its checkout last started, whatever ``older_than`` says.
    """
    in_flight_for = payments.longest_call if in_flight_for is None else in_flight_for
    report = ReconcileReport()
    last_id = 0
    while page := await db.stale_open_orders(older_than, batch, after_id=last_id):
        last_id = page[-1].id
        for order in page:
            await _reconcile_one(db, payments, order, report, expire_abandoned, in_flight_for)
    return report


async def _reconcile_one(
    db: Store,
    payments: PaymentGateway,
    order: Order,
    report: ReconcileReport,
    expire_abandoned: bool,
    in_flight_for: float,
) -> None:
    """Check one stale open order with Stripe and count what changed."""
    report.checked += 1
    if not order.stripe_session_id:
        # The shop stopped between creating the order and the session, or
        # the checkout is still waiting on Stripe: only the first is aborted.
        aborted = await db.abort_without_session(
            order.id,
            untouched_for=in_flight_for,
            source="reconcile",
        )
        if aborted:
            report.aborted += 1
        else:
            report.in_flight += 1
        return
    now = await sync_order(db, payments, order, source="reconcile")
    if now.flagged and not order.flagged:
        report.flagged += 1
    if now.status is not order.status:
        report.changed += 1
    elif (
        expire_abandoned
        and now.status is OrderStatus.PENDING
        and time.time() >= session_expires_at(now)
    ):
        # Never before expires_at: the shopper may still be typing their card.
        after = await cancel_order(db, payments, now)
        if after.status is OrderStatus.EXPIRED:
            report.expired += 1
        elif after.status is not now.status:
            report.changed += 1
