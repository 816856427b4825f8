"""Fixtures for the sandbox suite: a live sandbox, a webhook receiver, SDK clients."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import stripe

from .support import Sandbox, Target, running_sandbox


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    """One sandbox shared by the tests that need no special knobs."""
    async with running_sandbox() as running:
        yield running


@pytest.fixture(scope="session")
def make_sandbox() -> Callable[..., contextlib.AbstractAsyncContextManager[Sandbox]]:
    """A private sandbox with its own receiver and knobs: ``async with make_sandbox(...)``."""
    return running_sandbox


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client for hosted pages; redirects are inspected, not followed."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(
    params=["sandbox", pytest.param("stripe", marks=pytest.mark.stripe_live)], scope="session"
)
async def target(request: pytest.FixtureRequest, sandbox: Sandbox) -> AsyncIterator[Target]:
    """The same contract runs against the sandbox, and with -m stripe_live against Stripe."""
    # ``sandbox`` is a parameter, not looked up inside: a lookup from this running loop
    # fails when no earlier test has started the shared sandbox yet.
    if request.param == "sandbox":
        yield Target("sandbox", sandbox.client, sandbox)
        return
    key = os.environ.get("STRIPE_SECRET_KEY", "")
    if not key.startswith("sk_test_"):
        pytest.fail(
            "the stripe_live tests need STRIPE_SECRET_KEY=sk_test_... (a test-mode key); "
            "run them with: STRIPE_SECRET_KEY=sk_test_... pytest tests/sandbox -m stripe_live",
            pytrace=False,
        )
    http_client = stripe.AIOHTTPClient()
    client = stripe.StripeClient(key, http_client=http_client)
    try:
        yield Target("stripe", client, None)
    finally:
        await http_client.close_async()
