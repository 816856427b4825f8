"""The receipt page, its live status fragment, and the cancel page."""

from __future__ import annotations

import datetime as dt
import math
import time

from quart import Blueprint, Response, current_app, render_template, request

from storefront.errors import OrderNotFound
from storefront.fulfilment import cancel_order, sync_order
from storefront.orders import Order, TimelineEntry

bp = Blueprint("receipts", __name__)


class StatusSyncLimiter:
    """Decides when a receipt (its poll, or the success page) may ask Stripe about an order.

    Why receipts ask at all: if the webhook never comes (endpoint misconfigured,
    retries still backing off), a shopper watching the receipt should not wait
    for the reconciler. Why so rarely: a poll arrives every 2 s per open
    receipt and must stay a cheap read (the benchmark goal is >= 1,000 polls/s),
    and a public URL must not become a way to hammer Stripe. So a poll asks
    only about an open order with a session that has been untouched for
    ``interval`` seconds; the success page (the shopper just back from paying)
    may ask at once. Either way Stripe is asked about an order at most once per
    ``interval``, and never twice at once (the slot is taken before the call);
    with ``interval`` 0 polls never ask and the success page asks once per
    order. Memory is bounded: past ``capacity`` tracked orders, nothing asks.
    """

    def __init__(self, interval: float, capacity: int = 10_000):
        self.interval = interval
        self.capacity = capacity
        self._last: dict[int, float] = {}

    def allow(self, order: Order, now: float | None = None, *, returning: bool = False) -> bool:
        """True if this request should ask Stripe about ``order`` (and take the slot).

        ``returning``: the shopper's first look back from Stripe, which need not
        wait for the order to go quiet.
        """
        if not order.stripe_session_id or order.status.is_settled:
            return False
        # A poll stops at a final order; the shopper back from paying still asks
        # about one we gave up on (aborted, expired, failed): Stripe's word wins.
        if order.status.is_final and not returning:
            return False
        if self.interval <= 0 and not returning:
            return False
        now = time.time() if now is None else now
        window = self.interval if self.interval > 0 else math.inf
        if not returning and now - _timestamp(order.updated_at) < self.interval:
            return False
        last = self._last.get(order.id)
        if last is not None and now - last < window:
            return False
        if order.id not in self._last and len(self._last) >= self.capacity:
            self._last = {k: v for k, v in self._last.items() if now - v < window}
            if len(self._last) >= self.capacity:
                return False
        self._last[order.id] = now
        return True


def _timestamp(iso: str) -> float:
    # The database writes UTC as 2026-01-02T03:04:05.678Z.
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _order(token: str) -> tuple[Order, list[TimelineEntry]]:
    # Tokens are long random strings; anything else cannot be an order.
    found = await current_app.extensions["db"].order_with_timeline(token) if token else None
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
    found = await current_app.extensions["db"].order_with_timeline(before.token)
    assert found is not None
    return found


@bp.after_request
async def _private(response: Response) -> Response:
    # Every page here shows an order and the shopper's email: keep it out of
    # shared caches, the browser's back-forward cache and the disk.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/orders/<token>")
async def receipt(token: str) -> str:
    """The receipt; back from Stripe it asks Stripe itself how the payment went."""
    order, timeline = await _order(token)
    session_id = request.args.get("session_id")
    # Never trust the query string: it only prompts us to ask Stripe, and then
    # no more often than the polls do (reloading must not spend Stripe's rate limit).
    if (
        session_id
        and session_id == order.stripe_session_id
        and current_app.extensions["status_sync"].allow(order, returning=True)
    ):
        order, timeline = await _ask_stripe(order, timeline, source="success page")
    lines = await current_app.extensions["db"].order_lines(order.id)
    return await render_template("receipt.html", order=order, timeline=timeline, lines=lines)


@bp.get("/orders/<token>/status")
async def status(token: str) -> str:
    """The status fragment; it polls itself until the order is final."""
    order, timeline = await _order(token)
    if current_app.extensions["status_sync"].allow(order):
        order, timeline = await _ask_stripe(order, timeline, source="status poll")
    return await render_template(
        "partials/order_status.html", order=order, timeline=timeline, fragment=True
    )


def is_prefetch() -> bool:
    """True if the browser fetches this page ahead of a visit that may never come."""
    purposes = (
        request.headers.get("Sec-Purpose", ""),  # the standard (with prerender too)
        request.headers.get("Purpose", ""),  # Chromium's link prefetch
        request.headers.get("X-Moz", ""),  # older Firefox
    )
    return any(
        "prefetch" in (token.strip().lower() for token in value.split(";")) for value in purposes
    )


@bp.get("/orders/<token>/cancelled")
async def cancelled(token: str) -> str | Response:
    """The shopper came back without paying: expire the session so it can't be paid."""
    order, timeline = await _order(token)
    if is_prefetch():
        # A prefetch is not the shopper leaving: change nothing. Browsers drop
        # non-2xx prefetches, so the real visit comes here and expires the session.
        return Response("Not prefetched.", status=503, content_type="text/plain")
    after = await cancel_order(
        current_app.extensions["db"], current_app.extensions["payments"], order
    )
    order, timeline = await _after_sync(order, after, timeline)
    return await render_template("cancelled.html", order=order, timeline=timeline)
