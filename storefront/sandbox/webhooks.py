"""Webhook endpoints and at-least-once delivery of signed events, with chaos knobs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .settings import SandboxSettings, generate_webhook_secret

logger = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
SNIPPET_CHARS = 200


def sign(payload: str, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header for ``payload``, as Stripe computes it."""
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Endpoint:
    """A registered webhook endpoint."""

    id: str
    url: str
    secret: str
    enabled_events: list[str]
    created: int
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def wants(self, event_type: str) -> bool:
        """True when this endpoint subscribed to ``event_type``."""
        for pattern in self.enabled_events:
            if pattern == "*" or pattern == event_type:
                return True
            if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
                return True
        return False

    def public(self, with_secret: bool = False) -> dict[str, Any]:
        """Stripe's ``webhook_endpoint`` object; the secret only right after creation."""
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "webhook_endpoint",
            # Null: events use the account's default version (the SDK's pinned one here).
            "api_version": None,
            "application": None,
            "created": self.created,
            "description": self.description,
            "enabled_events": list(self.enabled_events),
            "livemode": False,
            "metadata": dict(self.metadata),
            "status": "enabled",
            "url": self.url,
        }
        if with_secret:
            obj["secret"] = self.secret
        return obj


def new_endpoint(
    endpoint_id: str, url: str, enabled_events: list[str], now: int, secret: str | None = None
) -> Endpoint:
    """An endpoint with a fresh secret unless one is given."""
    return Endpoint(endpoint_id, url, secret or generate_webhook_secret(), enabled_events, now)


@dataclass
class AttemptRecord:
    """One try at delivering an event to an endpoint."""

    at: float
    kind: str  # first, retry, duplicate, resend
    status: int | None = None
    error: str | None = None
    snippet: str = ""
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Delivery:
    """The delivery of one event to one endpoint."""

    event_id: str
    endpoint: Endpoint
    attempts: list[AttemptRecord] = field(default_factory=list)
    state: str = "pending"  # pending, succeeded, failed


@dataclass
class _Job:
    delivery: Delivery
    duplicate: bool = False


class Deliverer:
    """Sends events to endpoints in background tasks, retrying on the schedule."""

    def __init__(
        self,
        settings: SandboxSettings,
        rng: random.Random,
        stats: dict[str, int],
        events: dict[str, dict[str, Any]],
    ) -> None:
        self.settings = settings
        self.rng = rng
        self.stats = stats
        self.events = events
        self.deliveries: dict[str, list[Delivery]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._window: list[_Job] = []
        self._flush_handle: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Open the HTTP client inside the serving loop."""
        self._http = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def stop(self) -> None:
        """Cancel pending deliveries and close the HTTP client."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._window.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def busy(self) -> bool:
        """True while a delivery is queued, running or waiting to retry."""
        return bool(self._tasks or self._window)

    def delivery_success(self, event_id: str) -> bool | None:
        """True when every endpoint got the event, False when one's last try failed."""
        deliveries = self.deliveries.get(event_id, [])
        if deliveries and all(d.state == "succeeded" for d in deliveries):
            return True
        if any(d.state != "succeeded" and d.attempts for d in deliveries):
            return False
        return None  # nothing tried yet, or no endpoint wanted it

    def submit(self, event: dict[str, Any], endpoints: list[Endpoint]) -> None:
        """Queue ``event`` for each endpoint, applying the duplicate and shuffle knobs."""
        deliveries = [Delivery(event["id"], endpoint) for endpoint in endpoints]
        self.deliveries[event["id"]] = deliveries
        for delivery in deliveries:
            self._enqueue(_Job(delivery))
            if self.rng.random() < self.settings.duplicate_rate:
                self._enqueue(_Job(delivery, duplicate=True))

    def _enqueue(self, job: _Job) -> None:
        if self.settings.shuffle_window <= 0:
            self._spawn(self._run_job(job))
            return
        self._window.append(job)
        if len(self._window) >= self.settings.shuffle_window:
            self._flush()
        elif self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.settings.shuffle_max_wait, self._flush)

    def _flush(self) -> None:
        """Release the held window in a random order."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        jobs, self._window = self._window, []
        self.rng.shuffle(jobs)
        if jobs:
            self._spawn(self._run_window(jobs))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_window(self, jobs: list[_Job]) -> None:
        # First attempts go out one by one so the receiver sees the shuffled order.
        for job in jobs:
            ok = await self._first_attempt(job)
            if not ok and not job.duplicate:
                self._spawn(self._retry(job.delivery))

    async def _run_job(self, job: _Job) -> None:
        ok = await self._first_attempt(job)
        if not ok and not job.duplicate:
            await self._retry(job.delivery)

    async def _first_attempt(self, job: _Job) -> bool:
        if job.duplicate:
            self.stats["duplicates_sent"] += 1
            record = await self._attempt(job.delivery, "duplicate")
            return record.ok
        if self.rng.random() < self.settings.drop_first_rate:
            self.stats["dropped_first_attempts"] += 1
            self.stats["delivery_attempts"] += 1
            job.delivery.attempts.append(
                AttemptRecord(
                    time.time(), "first", error="dropped by the sandbox (drop_first_rate)"
                )
            )
            return False
        record = await self._attempt(job.delivery, "first")
        return record.ok

    async def _retry(self, delivery: Delivery) -> None:
        """Retry on the schedule until one attempt succeeds or the schedule ends."""
        if delivery.state == "succeeded":
            return
        for delay in self.settings.retry_schedule:
            await asyncio.sleep(delay)
            if delivery.state == "succeeded":  # a resend may have got through meanwhile
                return
            self.stats["retries"] += 1
            if (await self._attempt(delivery, "retry")).ok:
                return
        delivery.state = "failed"
        self.stats["deliveries_failed"] += 1
        logger.warning(
            "gave up delivering %s to %s after %d attempts",
            delivery.event_id,
            delivery.endpoint.url,
            len(delivery.attempts),
        )

    async def _attempt(self, delivery: Delivery, kind: str) -> AttemptRecord:
        """POST the event once, signed with a fresh timestamp; record what happened."""
        assert self._http is not None, "the deliverer is not started"
        event = self.events[delivery.event_id]
        payload = json.dumps(event, indent=2)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(payload, delivery.endpoint.secret, timestamp),
        }
        record = AttemptRecord(time.time(), kind)
        started = time.monotonic()
        self.stats["delivery_attempts"] += 1
        try:
            async with self._http.post(
                delivery.endpoint.url,
                data=payload.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.delivery_timeout),
                allow_redirects=False,  # Stripe counts a redirect as a failure
            ) as response:
                record.status = response.status
                text = await response.text(errors="replace")
                record.snippet = text[:SNIPPET_CHARS]
        except TimeoutError:
            record.error = f"timed out after {self.settings.delivery_timeout:g}s"
        except aiohttp.ClientError as exc:
            record.error = f"{type(exc).__name__}: {exc}"[:SNIPPET_CHARS]
        record.duration_ms = int((time.monotonic() - started) * 1000)
        delivery.attempts.append(record)
        outcome = record.status if record.status is not None else record.error
        logger.info(
            "webhook %s %s -> %s (%s): %s",
            event["id"],
            event["type"],
            delivery.endpoint.url,
            kind,
            outcome,
        )
        if record.ok and delivery.state != "succeeded":
            delivery.state = "succeeded"
            self.stats["deliveries_succeeded"] += 1
            event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
        return record

    async def resend(self, event_id: str, endpoints: list[Endpoint]) -> None:
        """Deliver an event again now, once per endpoint, outside the retry schedule."""
        deliveries = self.deliveries.setdefault(event_id, [])
        known = {delivery.endpoint.id for delivery in deliveries}
        event_type = self.events[event_id]["type"]
        for endpoint in endpoints:
            if endpoint.id not in known and endpoint.wants(event_type):
                deliveries.append(Delivery(event_id, endpoint))
        for delivery in deliveries:
            await self._attempt(delivery, "resend")
