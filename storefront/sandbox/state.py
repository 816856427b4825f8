"""The sandbox's in-memory world: sessions, events, endpoints, and their transitions."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
from typing import Any

from .checkout import DELAYED_METHODS, SessionRecord
from .clock import SandboxClock
from .errors import invalid, no_such
from .objects import charge_object, event_object, new_id, payment_intent_object, refund_object
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
        self.sessions: dict[str, SessionRecord] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, Endpoint] = {}
        # Refund ids, oldest first: refunds live on their sessions, and several made in
        # one second need this to list newest first.
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
        self, event_type: str, obj: dict[str, Any], request: tuple[str, str | None] | None = None
    ) -> dict[str, Any]:
        """Record an event about ``obj`` and hand it to delivery."""
        endpoints = [e for e in self.endpoints.values() if e.wants(event_type)]
        request_id, idempotency_key = request if request else (None, None)
        event = event_object(
            event_type, obj, self.now(), len(endpoints), request_id, idempotency_key
        )
        self.events[event["id"]] = event
        self.stats["events_created"] += 1
        logger.info("event %s %s about %s", event["id"], event_type, obj.get("id"))
        self.deliverer.submit(event, endpoints)
        return event

    def add_endpoint(self, url: str, enabled_events: list[str]) -> Endpoint:
        """Register a webhook endpoint with a fresh secret."""
        endpoint = new_endpoint(new_id("we_"), url, enabled_events, self.now())
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    # -- sessions ----------------------------------------------------------------

    def add_session(self, record: SessionRecord) -> None:
        """Store a newly created session."""
        self.sessions[record.id] = record

    def session(self, session_id: str) -> SessionRecord:
        """The session with this id, or a Stripe 404."""
        record = self.sessions.get(session_id)
        if record is None:
            raise no_such("checkout.session", session_id)
        return record

    def expire(self, record: SessionRecord, request: tuple[str, str | None] | None = None) -> None:
        """Expire an open session and emit ``checkout.session.expired``."""
        if record.obj["status"] != "open":
            raise invalid(
                f"This Checkout Session is {record.obj['status']} and can no longer be expired. "
                'Only Checkout Sessions with a status in ["open"] can be expired.',
            )
        record.obj.update(status="expired", url=None)
        record.pending_auth = None
        self.emit("checkout.session.expired", record.obj, request)

    def age(self, record: SessionRecord, seconds: int) -> None:
        """Move a session's clock back so it expires without waiting (tests only)."""
        record.obj["created"] -= seconds
        record.obj["expires_at"] -= seconds

    def expire_due(self) -> int:
        """Expire every open session past its ``expires_at``; return how many."""
        now = self.now()
        due = [
            r
            for r in self.sessions.values()
            if r.obj["status"] == "open" and r.obj["expires_at"] <= now
        ]
        for record in due:
            self.expire(record)
        return len(due)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.expiry_interval)
            self.expire_due()

    def complete(
        self,
        record: SessionRecord,
        email: str,
        name: str,
        method_type: str,
        settles_ok: bool = True,
    ) -> None:
        """The shopper paid: complete the session and emit ``checkout.session.completed``.

        A delayed method completes unpaid and settles after ``async_payment_delay``.
        """
        obj = record.obj
        pi_id = new_id("pi_")
        record.method_type = method_type
        record.pending_auth = None
        delayed = method_type in DELAYED_METHODS
        if not delayed:
            record.charge = self._charge(record, pi_id)
        obj.update(
            status="complete",
            url=None,
            payment_intent=pi_id,
            payment_status="unpaid" if delayed else "paid",
            customer_details={
                "address": None,
                "email": email,
                "name": name or None,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            },
        )
        if obj["amount_total"] == 0:
            obj["payment_status"] = "no_payment_required"
        self.emit("checkout.session.completed", obj)
        if delayed:
            record.settlement = "processing"
            self._spawn_timer(self._settle_later(record, settles_ok))

    def _charge(self, record: SessionRecord, pi_id: str) -> dict[str, Any]:
        return charge_object(
            pi_id,
            record.obj["amount_total"],
            record.obj["currency"],
            record.payment_intent_metadata,
            self.now(),
        )

    def _spawn_timer(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _settle_later(self, record: SessionRecord, succeed: bool) -> None:
        # Sandbox time: advancing the test clock settles the debit at once.
        await self.clock.sleep(self.settings.async_payment_delay)
        obj = record.obj
        if succeed:
            record.charge = self._charge(record, obj["payment_intent"])
            obj["payment_status"] = "paid"
            record.settlement = "succeeded"
            self.emit("checkout.session.async_payment_succeeded", obj)
        else:
            record.settlement = "failed"
            self.emit("checkout.session.async_payment_failed", obj)

    def payment_intent(self, record: SessionRecord) -> dict[str, Any] | None:
        """The session's payment intent object, for ``expand[]=payment_intent``."""
        obj = record.obj
        if obj["payment_intent"] is None:
            return None
        if record.settlement == "failed":
            status = "requires_payment_method"
        elif record.settlement == "processing":
            status = "processing"
        else:
            status = "succeeded"
        return payment_intent_object(
            obj["payment_intent"],
            obj["amount_total"],
            obj["currency"],
            status,
            record.payment_intent_metadata,
            obj["created"],
            record.method_type or "card",
            record.charge["id"] if record.charge else None,
        )

    # -- refunds -----------------------------------------------------------------

    def session_by_payment_intent(self, pi_id: str) -> SessionRecord:
        """The session that created this payment intent, or a 404."""
        for record in self.sessions.values():
            if record.obj["payment_intent"] == pi_id:
                return record
        raise no_such("payment_intent", pi_id, "payment_intent")

    def refund(
        self,
        record: SessionRecord,
        amount: int | None,
        metadata: dict[str, str],
        reason: str | None,
        request: tuple[str, str | None] | None = None,
    ) -> dict[str, Any]:
        """Refund part or all of a paid session's charge; emit ``charge.refunded``."""
        charge = record.charge
        pi_id = record.obj["payment_intent"]
        if charge is None or record.obj["payment_status"] != "paid":
            raise invalid(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                "payment_intent",
                "charge_not_refundable" if charge is None else None,
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                "amount",
            )
        refund = refund_object(charge, amount, self.now(), metadata, reason)
        record.refunds.append(refund)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, refund)
        self.emit("charge.refunded", charge, request)
        return refund

    def refunds(self) -> list[dict[str, Any]]:
        """Every refund made through the API, newest first."""
        by_id = {r["id"]: r for record in self.sessions.values() for r in record.refunds}
        return [by_id[refund_id] for refund_id in reversed(self.refund_ids)]
