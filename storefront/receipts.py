"""The receipt page, its poll (204 while unchanged, on a schedule), and the cancel page."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from quart import Blueprint, Response, current_app, render_template, request

from storefront.errors import OrderNotFound
from storefront.fulfilment import cancel_order, sync_order
from storefront.orders import Fulfilment, Order, OrderStatus, TimelineEntry
from storefront.store import OrderGlance

bp = Blueprint("receipts", __name__)

# How often an open receipt polls, by status and by how long the order has been
# quiet (seconds since it last changed): (quiet for less than, poll every).
# A payment is expected any moment just after checkout; a pending order left
# open for long, or a bank debit that takes days, need no answer within 2 s.
POLL_SCHEDULE: Mapping[OrderStatus, tuple[tuple[float, int], ...]] = {
    OrderStatus.PENDING: ((300, 2), (3600, 10), (math.inf, 60)),
    OrderStatus.PROCESSING: ((60, 2), (3600, 30), (math.inf, 300)),
}


def poll_interval(status: OrderStatus, quiet_for: float) -> int | None:
    """Seconds between polls of a receipt (JS and no-JS alike); None: final, stop polling."""
    for below, every in POLL_SCHEDULE.get(status, ()):
        if quiet_for < below:
            return every
    return None


def order_version(order: Order | OrderGlance) -> str:
    """A short digest that moves whenever the receipt's status fragment would change.

    ``updated_at`` moves with every write to the order; the other fields make
    two writes within one millisecond (its resolution) differ too.
    """
    parts = (
        order.updated_at,
        order.status.value,
        "flagged" if order.flagged else "",
        str(order.amount_refunded),
        str(order.fulfilment),
    )
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Poll:
    """What the page's poller carries: the order's token, the version shown, the interval."""

    token: str
    version: str
    every: int | None

    @classmethod
    def of(cls, order: Order | OrderGlance, token: str, now: float | None = None) -> Poll:
        """The poll state of ``order`` (whose token is ``token``) as of ``now``."""
        now = time.time() if now is None else now
        quiet_for = max(now - _timestamp(order.updated_at), 0.0)
        return cls(token, order_version(order), poll_interval(order.status, quiet_for))


class StatusSyncLimiter:
    """Decides when a receipt (its poll, or the success page) may ask Stripe about an order.

    Why receipts ask at all: if the webhook never comes (endpoint misconfigured,
    retries still backing off), a shopper watching the receipt should not wait
    for the reconciler. Why so rarely: a poll arrives every few seconds per open
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

    def due(
        self, order: Order | OrderGlance, now: float | None = None, *, returning: bool = False
    ) -> bool:
        """True if a request now may ask Stripe about ``order``; takes no slot.

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
            # Full: only slots still inside their window count (``allow`` drops the rest).
            return sum(now - v < window for v in self._last.values()) < self.capacity
        return True

    def allow(
        self, order: Order | OrderGlance, now: float | None = None, *, returning: bool = False
    ) -> bool:
        """True if this request should ask Stripe about ``order`` (and take the slot)."""
        now = time.time() if now is None else now
        if not self.due(order, now, returning=returning):
            return False
        if order.id not in self._last and len(self._last) >= self.capacity:
            window = self.interval if self.interval > 0 else math.inf
            self._last = {k: v for k, v in self._last.items() if now - v < window}
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
    return await render_template(
        "receipt.html",
        order=order,
        timeline=timeline,
        lines=lines,
        poll=Poll.of(order, token),
        Fulfilment=Fulfilment,
    )


class Answer(Enum):
    """What a status poll answers, before any rendering."""

    RELOAD = "reload"  # a page from before the poller: reload it whole
    NOT_FOUND = "not found"
    ASK_STRIPE = "ask stripe"  # a sync is due: ask, then decide again on what Stripe said
    UNCHANGED = "unchanged"  # an empty 204
    NEW_INTERVAL = "new interval"  # the poller alone
    CHANGED = "changed"  # the status, totals and poller


@dataclass(frozen=True)
class Asked:
    """What a poll request carries: the token, the page's ``v`` and ``every``, its HX-Target."""

    token: str
    version: str | None
    every: str | None
    target: str | None = None

    @property
    def reloads(self) -> bool:
        """True for a page from before the poller, which polled the status section itself."""
        return self.target == "order-status"


def decide(
    asked: Asked,
    order: Order | OrderGlance | None,
    sync_due: Callable[[Order | OrderGlance], bool],
    now: float | None = None,
) -> tuple[Answer, Poll | None]:
    """The answer to a poll of ``order`` (None: no such order), and its poll state.

    The one set of rules for the Quart view and ``storefront.fastpath``;
    ``sync_due`` is the limiter's ``allow`` (takes the slot) or ``due`` (only looks).
    """
    if asked.reloads:
        return Answer.RELOAD, None
    if order is None:
        return Answer.NOT_FOUND, None
    if sync_due(order):
        return Answer.ASK_STRIPE, None
    poll = Poll.of(order, asked.token, now)
    if asked.version != poll.version:
        return Answer.CHANGED, poll
    if asked.every != str(poll.every):
        return Answer.NEW_INTERVAL, poll
    return Answer.UNCHANGED, poll


def _never(order: Order | OrderGlance) -> bool:
    # Stripe was just asked: decide on its answer without asking again.
    return False


@bp.get("/orders/<token>/status")
async def status(token: str) -> str | Response:
    """A poll: 204 while the order is as the page shows it, else what changed.

    The page's poller sends the version and interval it shows (``v``, ``every``).
    Unchanged, the answer is one indexed read and an empty 204, which htmx
    leaves alone; a new interval alone swaps only the poller; a changed order
    also sends the status (its live region) and totals out of band. The
    unchanged case is usually answered before Quart (``storefront.fastpath``).
    """
    asked = Asked(
        token, request.args.get("v"), request.args.get("every"), request.headers.get("HX-Target")
    )
    db = current_app.extensions["db"]
    # Tokens are long random strings; an empty one cannot be an order.
    glance = await db.order_glance(token) if token and not asked.reloads else None
    answer, poll = decide(asked, glance, current_app.extensions["status_sync"].allow)
    if answer is Answer.RELOAD:
        return Response("", status=200, headers={"HX-Refresh": "true"})
    if answer is Answer.NOT_FOUND:
        raise OrderNotFound()
    order: Order | None = None
    timeline: list[TimelineEntry] = []
    if answer is Answer.ASK_STRIPE:
        order, timeline = await _ask_stripe(*await _order(token), source="status poll")
        answer, poll = decide(asked, order, _never)
    if answer is Answer.UNCHANGED:
        return Response(status=204)
    if answer is Answer.NEW_INTERVAL:
        return await render_template("partials/order_poll.html", poll=poll)
    if order is None:
        order, timeline = await _order(token)
        # The order may have moved since the glance: show and version what was read.
        poll = Poll.of(order, token)
    return await render_template(
        "partials/order_update.html",
        order=order,
        timeline=timeline,
        poll=poll,
        Fulfilment=Fulfilment,
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
