"""Helpers for the sandbox suite: a webhook receiver, a sandbox runner, parameters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import stripe
from quart import Quart, request

from storefront.sandbox import SandboxSettings, SandboxState, create_sandbox_app
from storefront.serving import BackgroundServer, free_port

TEST_KEY = "sk_test_sandbox_suite_0001"
WEBHOOK_SECRET = "whsec_sandbox_suite_secret_0001"
SUCCESS_URL = "https://example.com/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://example.com/cancel"


@dataclass
class Received:
    """One webhook request as the receiver saw it."""

    body: str
    headers: dict[str, str]
    at: float
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny webhook endpoint that records every request and answers as told."""

    received: list[Received] = field(default_factory=list)
    # Answer 500 to the first N deliveries of each event id.
    fail_first: int = 0
    always_status: int | None = None
    server: BackgroundServer | None = None

    def app(self) -> Quart:
        app = Quart("receiver")
        seen: dict[str, int] = {}

        @app.post("/hook")
        async def hook() -> tuple[str, int]:
            body = await request.get_data(as_text=True)
            event_id = json.loads(body).get("id", "")
            seen[event_id] = seen.get(event_id, 0) + 1
            status = 200
            if self.always_status is not None:
                status = self.always_status
            elif seen[event_id] <= self.fail_first:
                status = 500
            self.received.append(Received(body, dict(request.headers), time.time(), status))
            return json.dumps({"received": True}), status

        @app.get("/success")
        async def success() -> str:
            return "<!doctype html><title>Shop</title><h1>Thanks for your order</h1>"

        @app.get("/cancel")
        async def cancel() -> str:
            return "<!doctype html><title>Shop</title><h1>Checkout cancelled</h1>"

        return app

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def about(self, object_id: str) -> list[Received]:
        """Requests whose event is about ``object_id``."""
        return [r for r in self.received if r.event["data"]["object"].get("id") == object_id]

    def types_about(self, object_id: str) -> list[str]:
        """Distinct event types about ``object_id``, in arrival order."""
        types: list[str] = []
        for item in self.about(object_id):
            if item.status < 300 and item.event["type"] not in types:
                types.append(item.event["type"])
        return types

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Poll until ``predicate()`` holds; fail the test when it never does."""
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"receiver condition not met in {within}s; got {self.received!r}")
            await asyncio.sleep(0.02)


@dataclass
class Sandbox:
    """A running sandbox with its receiver and SDK client."""

    server: BackgroundServer
    receiver: Receiver
    client: stripe.StripeClient
    settings: SandboxSettings

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state(self) -> SandboxState:
        return self.server.app.extensions["sandbox"]  # type: ignore[attr-defined]


def suite_settings(receiver_url: str, port: int, **overrides: Any) -> SandboxSettings:
    """Fast settings for tests: short retries, quick settlement and expiry sweeps."""
    base = SandboxSettings(
        public_url=f"http://127.0.0.1:{port}",
        webhook_url=receiver_url + "/hook",
        webhook_secret=WEBHOOK_SECRET,
        retry_schedule=(0.05, 0.1, 0.2),
        delivery_timeout=2.0,
        async_payment_delay=0.3,
        expiry_interval=0.1,
        seed=1234,
        # Sandboxes run side by side: the mail tests give the catcher a free port.
        smtp_port=0,
    )
    return replace(base, **overrides)


@contextlib.asynccontextmanager
async def running_sandbox(
    receiver_options: Receiver | None = None, **overrides: Any
) -> AsyncIterator[Sandbox]:
    """Start a receiver (configured like ``receiver_options``), a sandbox, an SDK client."""
    receiver = receiver_options or Receiver()
    receiver.server = BackgroundServer(receiver.app())
    await receiver.server.start()
    port = free_port()
    settings = suite_settings(receiver.url, port, **overrides)
    server = BackgroundServer(create_sandbox_app(settings), port=port)
    await server.start()
    http_client = stripe.AIOHTTPClient()
    client = stripe.StripeClient(
        TEST_KEY, base_addresses={"api": server.url}, http_client=http_client
    )
    try:
        yield Sandbox(server, receiver, client, settings)
    finally:
        await http_client.close_async()
        await server.stop()
        await receiver.server.stop()


@dataclass
class Target:
    """Where the contract tests send their API calls: the sandbox or Stripe test mode."""

    name: str
    client: stripe.StripeClient
    sandbox: Sandbox | None

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox is not None


def session_params(**overrides: Any) -> dict[str, Any]:
    """A valid one-line payment session; tests override what they exercise."""
    params: dict[str, Any] = {
        "mode": "payment",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "line_items": [
            {
                "quantity": 2,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1999,
                    "product_data": {"name": "Enamel mug", "description": "Holds tea"},
                },
            }
        ],
        "client_reference_id": "order-42",
        "metadata": {"order_id": "42"},
        "payment_intent_data": {"metadata": {"order_id": "42"}},
    }
    params.update(overrides)
    return params
