"""Stripe's API budget over real HTTP: success-page look-ups throttled, checkouts limited."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.live import buy, pay
from tests.reliability.conftest import Stack

# The sandbox never delivers a webhook: only the shop's own look-ups move orders.
LOST = {"drop_first_rate": 1.0, "retry_schedule": ()}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def api_calls(http: aiohttp.ClientSession, stack: Stack) -> int:
    """How many API requests the sandbox has answered so far."""
    async with http.get(f"{stack.sandbox_url}/_sandbox/stats") as response:
        stats: dict[str, Any] = await response.json()
    return int(stats["api_requests"])


async def test_reloading_a_pending_success_page_asks_stripe_once(
    tmp_path: Path, http: aiohttp.ClientSession, database_url: str | None
) -> None:
    async with Stack(tmp_path / "shop.sqlite3", database_url=database_url, **LOST) as stack:
        token, _ = await buy(http, stack, "enamel-mug")
        session_id = (await stack.order(token))["stripe_session_id"]
        before = await api_calls(http, stack)
        for _ in range(100):
            url = f"{stack.shop_url}/orders/{token}?session_id={session_id}"
            async with http.get(url) as response:
                assert response.status == 200
                assert "Confirming payment" in await response.text()
        # The first load asked; the other 99 within the interval (30 s) did not.
        assert await api_calls(http, stack) - before == 1
        assert (await stack.order(token))["status"] == "pending"


async def test_the_first_load_back_from_stripe_asks_at_once(
    tmp_path: Path, http: aiohttp.ClientSession, database_url: str | None
) -> None:
    async with Stack(tmp_path / "shop.sqlite3", database_url=database_url, **LOST) as stack:
        token, pay_url = await buy(http, stack, "enamel-mug")
        response = await pay(http, pay_url)
        assert response.status == 303
        before = await api_calls(http, stack)
        async with http.get(response.headers["Location"]) as page:
            assert "Paid" in await page.text()
        assert await api_calls(http, stack) - before == 1
        # A final order is never fetched again, however often the page is reloaded.
        for _ in range(5):
            async with http.get(response.headers["Location"]) as page:
                assert "Paid" in await page.text()
        assert await api_calls(http, stack) - before == 1
        assert (await stack.order(token))["status"] == "paid"


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]
    text: str


async def checkout(
    http: aiohttp.ClientSession, stack: Stack, headers: dict[str, str] | None = None
) -> Answer:
    async with http.post(
        f"{stack.shop_url}/checkout/enamel-mug",
        data={"attempt": secrets.token_urlsafe(16)},
        headers=headers or {},
        allow_redirects=False,
    ) as response:
        return Answer(response.status, response.headers, await response.text())


async def test_checkouts_past_the_limit_get_429_with_retry_after(
    tmp_path: Path, http: aiohttp.ClientSession, database_url: str | None
) -> None:
    limited = {"checkout_rate_limit": 3}
    async with Stack(tmp_path / "shop.sqlite3", shop=limited, database_url=database_url) as stack:
        for _ in range(3):
            assert (await checkout(http, stack)).status == 303
        before = await api_calls(http, stack)

        # With htmx: a fragment for the product card, which htmx swaps in.
        refused = await checkout(http, stack, {"HX-Request": "true"})
        assert refused.status == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        fragment = refused.text
        assert "<html" not in fragment and 'data-status="429"' in fragment
        assert "try again in a minute" in fragment and "Nothing was charged" in fragment

        # Without JS: a whole page saying the same.
        plain = await checkout(http, stack)
        assert plain.status == 429 and plain.headers["Retry-After"].isdigit()
        page = plain.text
        assert "<html" in page and "try again in a minute" in page

        # Refused checkouts cost Stripe nothing and open no order.
        assert await api_calls(http, stack) == before
        rows = await stack.db.fetch_all("SELECT id FROM orders")
        assert len(rows) == 3


async def test_the_limit_counts_the_address_our_proxy_recorded(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    shop = {"checkout_rate_limit": 2, "proxy_hops": 1}
    async with Stack(tmp_path / "shop.sqlite3", shop=shop) as stack:
        # Two shoppers behind one proxy have their own allowance...
        for client in ("203.0.113.1", "203.0.113.2"):
            for _ in range(2):
                forwarded = {"X-Forwarded-For": client}
                assert (await checkout(http, stack, forwarded)).status == 303
        # ...and a made-up address in front of the proxy's entry changes nothing.
        spoofed = {"X-Forwarded-For": "198.51.100.9, 203.0.113.1"}
        assert (await checkout(http, stack, spoofed)).status == 429


async def test_without_trusted_proxies_forwarded_for_is_ignored(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with Stack(tmp_path / "shop.sqlite3", shop={"checkout_rate_limit": 2}) as stack:
        statuses = []
        for _ in range(3):
            fresh = {"X-Forwarded-For": f"198.51.100.{secrets.randbelow(250)}"}
            statuses.append((await checkout(http, stack, fresh)).status)
        assert statuses == [303, 303, 429]


async def test_a_limit_of_zero_turns_it_off(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with Stack(tmp_path / "shop.sqlite3", shop={"checkout_rate_limit": 0}) as stack:
        statuses = {(await checkout(http, stack)).status for _ in range(15)}
        assert statuses == {303}


def test_the_limit_message_names_minutes_when_longer() -> None:
    from storefront.errors import TooManyCheckouts

    assert re.search(r"in 2 minutes", TooManyCheckouts(61).message)
    assert TooManyCheckouts(61).headers() == {"Retry-After": "61"}


async def test_in_a_browser_the_limit_message_shows_in_the_card_or_as_a_page(
    tmp_path: Path, browser: Browser
) -> None:
    async with Stack(tmp_path / "shop.sqlite3", shop={"checkout_rate_limit": 1}) as stack:
        # The limit holds for 60 s after the first click, whenever the clock minute turns.
        for javascript in (True, False):
            context = await browser.new_context(java_script_enabled=javascript)
            page = await context.new_page()
            page.set_default_timeout(10_000)
            try:
                await page.goto(stack.shop_url)
                buy_button = page.get_by_role("button", name=re.compile("^Buy Enamel mug"))
                await buy_button.click()
                if javascript:
                    # The first of the minute goes through to the payment page.
                    await page.wait_for_url(re.compile(re.escape(stack.sandbox_url)))
                    await page.goto(stack.shop_url)
                    await page.get_by_role("button", name=re.compile("^Buy Enamel mug")).click()
                    card = page.locator("#product-enamel-mug .card-message")
                    await expect(card).to_contain_text("Please wait a moment")
                    await expect(card).to_contain_text("try again in a minute")
                    assert page.url.rstrip("/") == stack.shop_url
                else:
                    # The same address has used its checkout: a whole page says why.
                    await expect(page.get_by_role("heading")).to_contain_text(
                        "Please wait a moment"
                    )
                    await expect(page.get_by_text("try again in a minute")).to_be_visible()
            finally:
                await context.close()
