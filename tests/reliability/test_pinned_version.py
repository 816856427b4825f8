"""The shop speaks the pinned API version: checkouts against the sandbox in strict mode.

Every LiveStack sandbox refuses requests not speaking the pinned version, on an
account whose default is older, so each test over it proves the shop sends the pin.
Here the payment-method setting is in use, paid through the hosted page over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from storefront.config import SANDBOX_API_KEY
from storefront.payments import STRIPE_API_VERSION
from tests.live import CARD, STRICT_VERSION, buy, pay
from tests.reliability.conftest import Stack, Stacks

# Long enough that only the test clock, not real time, settles a debit here.
SLOW_SETTLEMENT = 3600.0


@pytest.fixture
async def stacks(fresh_database: Callable[[], str | None]) -> AsyncIterator[Stacks]:
    """Started stacks, stopped after the test."""
    started = Stacks(fresh_database)
    yield started
    for stack in started:
        await stack.stop()


async def start(stacks: Stacks, tmp_path: Path, methods: str) -> Stack:
    stack = Stack(
        tmp_path / "shop.sqlite3",
        shop_env={"STOREFRONT_ALLOWED_PAYMENT_METHODS": methods},
        database_url=stacks.fresh_database(),
        async_payment_delay=SLOW_SETTLEMENT,
    )
    await stack.start()
    stacks.append(stack)
    return stack


# The sandbox's own refusal: no order is written, so one backend is enough.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_live_sandbox_refuses_calls_without_the_pinned_version(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, "card")
    assert stack.sandbox_settings.require_api_version
    assert stack.sandbox_settings.api_version == STRICT_VERSION["api_version"]
    auth = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}
    for extra in ({}, {"Stripe-Version": STRICT_VERSION["api_version"]}):
        async with http.get(f"{stack.sandbox_url}/v1/events", headers=auth | extra) as response:
            body = await response.json()
        assert response.status == 400
        assert "strict pinned-version mode" in body["error"]["message"]
        assert response.headers["Stripe-Version"] == STRICT_VERSION["api_version"]
    pinned = auth | {"Stripe-Version": STRIPE_API_VERSION}
    async with http.get(f"{stack.sandbox_url}/v1/events", headers=pinned) as response:
        assert response.status == 200
        assert response.headers["Stripe-Version"] == STRIPE_API_VERSION


async def test_cards_only_checkout_runs_end_to_end(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, "card")
    token, pay_url = await buy(http, stack, "enamel-mug")
    session = stack.sandbox_state.sessions[pay_url.rsplit("/", 1)[-1]].to_stripe()
    # An eur session would offer SEPA Direct Debit too; the setting filters it out.
    assert session["allowed_payment_method_types"] == ["card"]
    assert session["payment_method_types"] == ["card"]
    async with http.get(pay_url) as response:
        page = await response.text()
    assert response.status == 200 and "IBAN" not in page
    assert (await pay(http, pay_url)).status == 303
    await stack.wait_for_status(token, "paid")
    assert stack.sandbox_state.stats["api_requests"] >= 1


async def test_card_and_debit_checkout_settles_when_the_clock_advances(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, "card,sepa_debit")
    token, pay_url = await buy(http, stack, "dotted-notebook")
    session = stack.sandbox_state.sessions[pay_url.rsplit("/", 1)[-1]].to_stripe()
    assert session["allowed_payment_method_types"] == ["card", "sepa_debit"]
    assert session["payment_method_types"] == ["card", "sepa_debit"]
    form = {"email": CARD["email"], "name": CARD["name"], "iban": "DE89370400440532013000"}
    async with http.post(f"{pay_url}/bank", data=form, allow_redirects=False) as response:
        assert response.status == 303
    await stack.wait_for_status(token, "processing")
    # An hour of sandbox time passes at once; the debit settles and the webhook follows.
    url = f"{stack.sandbox_url}/_sandbox/clock/advance?seconds={int(SLOW_SETTLEMENT)}"
    async with http.post(url) as response:
        assert (await response.json())["settled_payments"] == 1
    await stack.wait_for_status(token, "paid")
