"""The receipt page, its live status fragment, and the cancel page."""

from __future__ import annotations

import datetime as dt
import time

from quart import Blueprint, current_app, render_template, request

from storefront import orders
from storefront.errors import OrderNotFound
from storefront.fulfilment import cancel_order, sync_order
from storefront.orders import Order, TimelineEntry

bp = Blueprint("receipts", __name__)


class StatusSyncLimiter:
    """Decides when a status poll may ask Stripe about an order.

    Why polls ask at all: if the webhook never comes (endpoint misconfigured,
    retries still backing off), a shopper watching the receipt should not wait
    for the reconciler. Why so rarely: a poll arrives every 2 s per open
    receipt and must stay a cheap read (the benchmark goal is >= 1,000 polls/s),
    and a public URL must not become a way to hammer Stripe. So a poll asks
    only about an open order with a session that has been untouched for
    ``interval`` seconds, at most once per ``interval`` per order, and never
    twice at once (the slot is taken before the call). Memory is bounded:
    past ``capacity`` tracked orders, polls simply stop asking.
    """

    def __init__(self, interval: float, capacity: int = 10_000):
        self.interval = interval
        self.capacity = capacity
        self._last: dict[int, float] = {}

    def allow(self, order: Order, now: float | None = None) -> bool:
        """True if this poll should ask Stripe about ``order`` (and take the slot)."""
        if self.interval <= 0 or order.status.is_final or not order.stripe_session_id:
            return False
        now = time.time() if now is None else now
        if now - _timestamp(order.updated_at) < self.interval:
            return False
        last = self._last.get(order.id)
        if last is not None and now - last < self.interval:
            return False
        if order.id not in self._last and len(self._last) >= self.capacity:
            self._last = {k: v for k, v in self._last.items() if now - v < self.interval}
            if len(self._last) >= self.capacity:
                return False
        self._last[order.id] = now
        return True


def _timestamp(iso: str) -> float:
    # The database writes UTC as 2026-01-02T03:04:05.678Z.
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _order(token: str) -> tuple[Order, list[TimelineEntry]]:
    # Tokens are long random strings; anything else cannot be an order.
    found = await orders.get_with_timeline(current_app.extensions["db"], token) if token else None
    if found is None:
        raise OrderNotFound()
    return found


async def _ask_stripe(
    order: Order, timeline: list[TimelineEntry], *, source: str
) -> tuple[Order, list[TimelineEntry]]:
    """Apply the order's session as Stripe reports it now."""
    synced = await sync_order(
        current_app.extensions["db"], current_app.extensions["payments"], order, source=source
    )
    return await _after_sync(order, synced, timeline)


async def _after_sync(
    before: Order, after: Order, timeline: list[TimelineEntry]
) -> tuple[Order, list[TimelineEntry]]:
    # Read the timeline again only when asking Stripe changed the order.
    if after == before:
        return before, timeline
    found = await orders.get_with_timeline(current_app.extensions["db"], before.token)
    assert found is not None
    return found


@bp.get("/orders/<token>")
async def receipt(token: str) -> str:
    """The receipt; back from Stripe it asks Stripe itself how the payment went."""
    order, timeline = await _order(token)
    session_id = request.args.get("session_id")
    if session_id and session_id == order.stripe_session_id:
        # Never trust the query string: it only prompts us to ask Stripe.
        order, timeline = await _ask_stripe(order, timeline, source="success page")
    return await render_template("receipt.html", order=order, timeline=timeline)


@bp.get("/orders/<token>/status")
async def status(token: str) -> str:
    """The status fragment; it polls itself until the order is final."""
    order, timeline = await _order(token)
    if current_app.extensions["status_sync"].allow(order):
        order, timeline = await _ask_stripe(order, timeline, source="status poll")
    return await render_template("partials/order_status.html", order=order, timeline=timeline)


@bp.get("/orders/<token>/cancelled")
async def cancelled(token: str) -> str:
    """The shopper came back without paying: expire the session so it can't be paid."""
    order, timeline = await _order(token)
    after = await cancel_order(
        current_app.extensions["db"], current_app.extensions["payments"], order
    )
    order, timeline = await _after_sync(order, after, timeline)
    return await render_template("cancelled.html", order=order, timeline=timeline)
