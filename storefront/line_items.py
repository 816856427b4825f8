"""Stripe's line items for paid orders, fetched by a background task, never by the webhook.

A webhook's session carries no line items, and a session with a discount or a
tax needs them to know what each line cost. Asking Stripe before answering made
every such delivery wait on Stripe (and on its retries when Stripe was slow).
Instead the due state is the order itself (``Store.line_items_due``: a paid,
processing or refunded order, not flagged, with a line whose amount is not
known), so nothing is lost when the shop stops between the answer and the
call. This task fetches and records them: at once for the orders a webhook
just moved (``LineItemsTask.due``), and on a sweep every ``SWEEP_INTERVAL``
seconds for anything left (a crash, a failed look-up). A failed look-up waits
for the next sweep; it is never retried in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from storefront.evidence import EventOutcome, tax_is_exclusive
from storefront.orders import Order
from storefront.paid_lines import LineAmounts
from storefront.payments import PaymentError, PaymentGateway
from storefront.store import LINE_ITEMS_LOCK, Store

log = logging.getLogger(__name__)

# Seconds between sweeps of every order whose line items are due.
SWEEP_INTERVAL = 30.0
# Orders read per page of a sweep.
BATCH = 100


@dataclass
class LinesReport:
    """What one pass did: lines recorded, look-ups failed (due still), orders flagged."""

    recorded: int = 0
    failed: int = 0
    flagged: int = 0


def paid_outcome(order: Order, lines: tuple[LineAmounts, ...]) -> EventOutcome:
    """The order's recorded totals with Stripe's lines, for ``Store.record_lines`` to check."""
    subtotal, discount, shipping, tax, paid = (
        order.amount_subtotal,
        order.amount_discount,
        order.amount_shipping,
        order.amount_tax,
        order.amount_paid,
    )
    return EventOutcome(
        status=order.status,
        session_id=order.stripe_session_id,
        amount=paid,
        currency=order.currency,
        subtotal=subtotal,
        discount=discount,
        shipping=shipping,
        tax=tax,
        tax_exclusive=tax_is_exclusive(subtotal, discount, shipping, tax, paid),
        lines=lines,
    )


async def record_due(
    db: Store,
    payments: PaymentGateway,
    *,
    order_ids: Sequence[int] | None = None,
    batch: int = BATCH,
    warned: set[int] | None = None,
) -> LinesReport:
    """Fetch and record the line items of every order they are due for (or of ``order_ids``).

    ``warned`` holds the orders whose failed look-up was logged already, so an
    outage logs each order once, not once per sweep.
    """
    report = LinesReport()
    warned = set() if warned is None else warned
    last_id = 0
    while page := await db.line_items_due(batch, after_id=last_id, order_ids=order_ids):
        last_id = page[-1].id
        for order in page:
            await _record_one(db, payments, order, report, warned)
    return report


async def _record_one(
    db: Store, payments: PaymentGateway, order: Order, report: LinesReport, warned: set[int]
) -> None:
    assert order.stripe_session_id is not None  # line_items_due asks for one
    try:
        lines = await payments.line_items(order.stripe_session_id)
    except PaymentError as error:
        if error.missing:
            # Stripe has no such session: asking again cannot help, a person looks.
            reason = f"line items not fetched: Stripe has no session {order.stripe_session_id}"
            await db.flag(order.id, reason)
            log.warning("order_id=%s flagged: %s", order.id, reason)
            report.flagged += 1
            return
        _failed(order.id, f"line items not fetched, retried later: {error}", warned)
        report.failed += 1
        return
    if not lines:
        # Every paid session has line items; an empty or incomplete list is a bad answer.
        _failed(order.id, "Stripe listed no complete line items; retried later", warned)
        report.failed += 1
        return
    warned.discard(order.id)
    reason = await db.record_lines(order.id, paid_outcome(order, lines))
    if reason is not None:
        log.warning("order_id=%s flagged: %s", order.id, reason)
        report.flagged += 1
    else:
        log.info("order_id=%s: line items recorded", order.id)
        report.recorded += 1


def _failed(order_id: int, message: str, warned: set[int]) -> None:
    if order_id in warned:
        log.debug("order_id=%s: %s", order_id, message)
    else:
        warned.add(order_id)
        log.warning("order_id=%s: %s", order_id, message)


class LineItemsTask:
    """The background task: woken for orders a webhook just moved, and sweeping."""

    def __init__(
        self, db: Store, payments: PaymentGateway, *, interval: float = SWEEP_INTERVAL
    ) -> None:
        self.db = db
        self.payments = payments
        self.interval = interval
        self._named: set[int] = set()
        self._wake = asyncio.Event()
        self._warned: set[int] = set()

    def due(self, order_id: int) -> None:
        """A committed move left this order's line items to fetch: fetch them soon."""
        self._named.add(order_id)
        self._wake.set()

    async def sweep(self) -> LinesReport | None:
        """One pass over every order whose line items are due; None if another instance sweeps."""
        async with self.db.exclusive(LINE_ITEMS_LOCK) as mine:
            if not mine:
                return None
            return await record_due(self.db, self.payments, warned=self._warned)

    async def run_forever(self) -> None:
        """Sweep at once and every ``interval`` seconds; between sweeps, serve wake-ups.

        An interval of 0 serves wake-ups only.
        """
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() if self.interval > 0 else math.inf
        while True:
            wait = next_sweep - loop.time()
            if wait > 0 and not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), None if wait == math.inf else wait)
            self._wake.clear()
            named, self._named = self._named, set()
            try:
                report = None
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + self.interval
                    report = await self.sweep()
                # The sweep covered the named orders, unless another instance swept.
                if report is None and named:
                    await record_due(
                        self.db, self.payments, order_ids=sorted(named), warned=self._warned
                    )
                elif report is not None and (report.recorded or report.failed or report.flagged):
                    log.info("line items swept: %s", report)
            except Exception:
                # A failed database read, say: the next sweep tries again, never sooner.
                log.exception("line items pass failed; will try again")
