"""The sandbox's in-memory world: sessions, events, endpoints, and their transitions."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
from typing import Any

from .catalog import Catalog
from .clock import SandboxClock
from .disputes import auto_dispute_reason, open_dispute
from .errors import no_such
from .objects import new_id
from .resources import CheckoutSession, Dispute, MethodDetails, Refund, event_object
from .settings import SandboxSettings
from .webhooks import Deliverer, Endpoint, new_endpoint

logger = logging.getLogger(__name__)

STAT_NAMES = (
    "events_created",
    "delivery_attempts",
    "deliveries_succeeded",
    "deliveries_failed",
    "duplicates_sent",
    "dropped_first_attempts",
    "retries",
    "api_requests",
    "api_failures_injected",
)


class SandboxState:
    """Everything one sandbox app knows; kept on ``app.extensions["sandbox"]``."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.clock = SandboxClock()
        self.rng = random.Random(settings.seed)
        self.stats: dict[str, int] = dict.fromkeys(STAT_NAMES, 0)
        self.sessions: dict[str, CheckoutSession] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, Endpoint] = {}
        # Disputes by id, oldest first (``backoffice.py`` opens and closes them).
        self.disputes: dict[str, Dispute] = {}
        self.catalog = Catalog()
        # Refund ids, oldest first: refunds live on their charges, and several made in
        # one second need this to list newest first across charges.
        self.refund_ids: list[str] = []
        # (api key, idempotency key) -> stored answer; and one lock per pair.
        self.idempotency: dict[tuple[str, str], dict[str, Any]] = {}
        self.idempotency_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.deliverer = Deliverer(settings, self.rng, self.stats, self.events)
        self._timers: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        if settings.webhook_url:
            endpoint = new_endpoint(
                "we_default", settings.webhook_url, ["*"], self.now(), settings.webhook_secret
            )
            endpoint.description = "default endpoint from the sandbox settings"
            self.endpoints[endpoint.id] = endpoint

    def update_settings(self, **changes: Any) -> SandboxSettings:
        """Change knobs while running (e.g. failure_rate on, then off, in a chaos test)."""
        for name in ("webhook_url", "webhook_secret", "public_url", "seed"):
            if name in changes:
                raise ValueError(f"{name} cannot change while the sandbox runs")
        self.settings = dataclasses.replace(self.settings, **changes)
        self.deliverer.settings = self.settings
        return self.settings

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Start delivery and the expiry sweeper in the serving loop."""
        await self.deliverer.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        """Stop every background task and close the HTTP client."""
        tasks = [*self._timers, *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sweeper = None
        await self.deliverer.stop()

    async def wait_idle(self, timeout: float) -> None:  # noqa: ASYNC109 (public interface)
        """Wait until no delivery or settlement is pending; TimeoutError past ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Two quiet looks in a row: a finishing task may still emit a follow-up event.
        quiet = 0
        while quiet < 2:
            if self.deliverer.busy or self._timers:
                quiet = 0
            else:
                quiet += 1
            if loop.time() > deadline:
                raise TimeoutError(f"sandbox still busy after {timeout:g}s: {self.stats}")
            await asyncio.sleep(0.01)

    # -- clock and events --------------------------------------------------------

    def now(self) -> int:
        """Sandbox time (real time plus the test clock's advances) in whole seconds."""
        return int(self.clock.now())

    def today(self) -> dt.date:
        """Today's date in sandbox time, for card expiry checks."""
        return dt.date.fromtimestamp(self.clock.now())

    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        request: tuple[str, str | None] | None = None,
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record an event about ``obj`` and hand it to delivery."""
        endpoints = [e for e in self.endpoints.values() if e.wants(event_type)]
        request_id, idempotency_key = request if request else (None, None)
        event = event_object(
            event_type,
            obj,
            self.now(),
            len(endpoints),
            request_id,
            idempotency_key,
            previous_attributes,
        )
        self.events[event["id"]] = event
        self.stats["events_created"] += 1
        logger.info("event %s %s about %s", event["id"], event_type, obj.get("id"))
        self.deliverer.submit(event, endpoints)
        return event

    def add_endpoint(
        self,
        url: str,
        enabled_events: list[str],
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Endpoint:
        """Register a webhook endpoint with a fresh secret."""
        endpoint = new_endpoint(new_id("we_"), url, enabled_events, self.now())
        endpoint.description = description
        endpoint.metadata = dict(metadata or {})
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    # -- sessions ----------------------------------------------------------------

    def add_session(self, record: CheckoutSession) -> None:
        """Store a newly created session."""
        self.sessions[record.id] = record

    def session(self, session_id: str) -> CheckoutSession:
        """The session with this id, or a Stripe 404."""
        record = self.sessions.get(session_id)
        if record is None:
            raise no_such("checkout.session", session_id)
        return record

    def expire(
        self, record: CheckoutSession, request: tuple[str, str | None] | None = None
    ) -> None:
        """Expire an open session and emit ``checkout.session.expired``."""
        record.expire()
        self.emit("checkout.session.expired", record.to_stripe(), request)

    def age(self, record: CheckoutSession, seconds: int) -> None:
        """Move a session's clock back so it expires without waiting (tests only)."""
        record.move_back(seconds)

    def expire_due(self) -> int:
        """Expire every open session past its ``expires_at``; return how many."""
        now = self.now()
        due = [record for record in self.sessions.values() if record.is_due(now)]
        for record in due:
            self.expire(record)
        return len(due)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.expiry_interval)
            self.expire_due()

    def complete(
        self,
        record: CheckoutSession,
        email: str,
        name: str,
        method_type: str,
        settles_ok: bool = True,
        details: MethodDetails | None = None,
    ) -> None:
        """The shopper paid: complete the session and emit ``checkout.session.completed``.

        A delayed method completes unpaid and settles after ``async_payment_delay``.
        """
        details = details or MethodDetails(type=method_type, email=email, name=name or None)
        delayed = record.complete(details, self.now())
        self.emit("checkout.session.completed", record.to_stripe())
        # Stripe's dispute test cards pay, then the cardholder's bank disputes the charge.
        reason = auto_dispute_reason(details)
        if reason and record.charge is not None:
            open_dispute(self, record.charge, None, reason)
        if delayed:
            self._spawn_timer(self._settle_later(record, settles_ok))

    def _spawn_timer(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _settle_later(self, record: CheckoutSession, succeed: bool) -> None:
        # Sandbox time: advancing the test clock settles the debit at once.
        await self.clock.sleep(self.settings.async_payment_delay)
        record.settle(succeed, self.now())
        outcome = "succeeded" if succeed else "failed"
        self.emit(f"checkout.session.async_payment_{outcome}", record.to_stripe())

    # -- refunds -----------------------------------------------------------------

    def session_by_payment_intent(self, pi_id: str) -> CheckoutSession:
        """The session that created this payment intent, or a 404."""
        for record in self.sessions.values():
            if record.payment_intent_id == pi_id:
                return record
        raise no_such("payment_intent", pi_id, "payment_intent")

    def refund(
        self,
        record: CheckoutSession,
        amount: int | None,
        metadata: dict[str, str],
        reason: str | None,
        request: tuple[str, str | None] | None = None,
    ) -> Refund:
        """Refund part or all of a paid session's charge; emit ``charge.refunded``."""
        refund = record.refund(amount, self.now(), metadata, reason)
        self.refund_ids.append(refund.id)
        charge = record.charge
        if charge is not None:
            self.emit(
                "charge.refunded",
                charge.to_stripe(),
                request,
                previous_attributes=charge.changed_by(refund),
            )
        self.emit("refund.created", refund.to_stripe(), request)
        return refund

    def refunds(self) -> list[Refund]:
        """Every refund made through the API, newest first."""
        by_id = {
            refund.id: refund
            for record in self.sessions.values()
            if record.charge is not None
            for refund in record.charge.refunds
        }
        return [by_id[refund_id] for refund_id in reversed(self.refund_ids)]
