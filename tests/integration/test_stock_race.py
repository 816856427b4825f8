"""Stock cannot be oversold: 100 shoppers race for the last 5, over real HTTP.

The shop and the sandbox on free ports, the real SDK, real SQLite or PostgreSQL. Each
shopper has a cookie jar of its own; all press at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from storefront.catalog import read_products_file
from tests.live import ROOT, LiveStack, live_database_url, pay
from tests.money import assert_money_invariant

SHOPPERS = 100
LAST = 5
SLUG = "enamel-mug"


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LiveStack]:
    async with LiveStack(
        tmp_path / "shop.sqlite3", database_url=live_database_url(request)
    ) as live:
        await set_stock(live, LAST)
        yield live
        await live.sandbox_state.wait_idle(15)
        assert_money_invariant(live.location, live.sandbox_state)


async def set_stock(stack: LiveStack, stock: int) -> None:
    products = read_products_file(ROOT / "data" / "products.toml")
    mug = next(p for p in products if p.slug == SLUG)
    await stack.db.save_products([dataclasses.replace(mug, stock=stock)])


async def buy_now(stack: LiveStack) -> tuple[int, str]:
    """One shopper presses Buy now as htmx would; the status and the payment URL or text."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{stack.shop_url}/checkout/{SLUG}",
            data={"attempt": secrets.token_urlsafe(16)},
            headers={"HX-Request": "true"},
            allow_redirects=False,
        ) as response,
    ):
        return response.status, response.headers.get("HX-Redirect") or await response.text()


async def cart_checkout(stack: LiveStack) -> tuple[int, str]:
    """One shopper adds one to a cart of its own and checks out without JavaScript."""
    # unsafe: keep cookies of an IP address host, as a browser does.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            f"{stack.shop_url}/cart/add/{SLUG}", data={"quantity": "1"}, allow_redirects=False
        ) as response:
            # Once every unit is held, adding is refused too: told sold out at once.
            if response.status == 409:
                return response.status, await response.text()
            assert response.status == 303, await response.text()
        async with http.post(
            f"{stack.shop_url}/cart/checkout",
            data={"attempt": secrets.token_urlsafe(16)},
            allow_redirects=False,
        ) as response:
            return response.status, response.headers.get("Location") or await response.text()


async def race(stack: LiveStack, shopper) -> tuple[list[str], list[str]]:
    results = await asyncio.gather(*(shopper(stack) for _ in range(SHOPPERS)))
    won = [where for status, where in results if status in (204, 303)]
    lost = [text for status, text in results if status == 409]
    assert len(won) + len(lost) == SHOPPERS, [s for s, _ in results if s not in (204, 303, 409)]
    return won, lost


async def advance_clock(stack: LiveStack, seconds: int) -> dict:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{stack.sandbox_url}/_sandbox/clock/advance", params={"seconds": str(seconds)}
        ) as response,
    ):
        assert response.status == 200
        return await response.json()


@pytest.mark.parametrize("shopper", [buy_now, cart_checkout], ids=["buy-now", "cart"])
async def test_a_hundred_shoppers_for_the_last_five(stack: LiveStack, shopper) -> None:
    won, lost = await race(stack, shopper)
    assert len(won) == LAST
    assert len(lost) == SHOPPERS - LAST
    assert all("sold out" in text for text in lost)
    assert (await stack.db.stock_report())[SLUG] == (LAST, LAST, LAST)

    # Three pay; two walk away and their sessions expire on Stripe's clock (each
    # session aged past its expires_at: advancing the whole clock would put every
    # later session's expires_at, computed by the shop from real time, in the past).
    async with aiohttp.ClientSession() as http:
        for url in won[:3]:
            assert (await pay(http, url)).status == 303
        for url in won[3:]:
            session_id = url.rsplit("/", 1)[-1]
            async with http.post(
                f"{stack.sandbox_url}/_sandbox/sessions/{session_id}/age",
                params={"seconds": str(2 * 3600)},
            ) as response:
                assert response.status == 200, await response.text()
    rows = await stack.db.fetch_all("SELECT status FROM orders ORDER BY id")
    for _ in range(200):
        rows = await stack.db.fetch_all("SELECT status FROM orders ORDER BY id")
        if sorted(r["status"] for r in rows) == ["expired"] * 2 + ["paid"] * 3:
            break
        await asyncio.sleep(0.05)
    assert sorted(r["status"] for r in rows) == ["expired"] * 2 + ["paid"] * 3
    # Sold units left the stock; the expired ones came back, and nothing is held.
    assert (await stack.db.stock_report())[SLUG] == (2, 0, 0)

    # The two units that came back are sold once more, to exactly two of another hundred.
    won, lost = await race(stack, shopper)
    assert (len(won), len(lost)) == (2, SHOPPERS - 2)
    async with aiohttp.ClientSession() as http:
        for url in won:
            assert (await pay(http, url)).status == 303
    for _ in range(200):
        if (await stack.db.stock_report())[SLUG] == (0, 0, 0):
            break
        await asyncio.sleep(0.05)
    assert (await stack.db.stock_report())[SLUG] == (0, 0, 0)
    # Nothing is left open for Stripe's clock to expire, and the stock stays sold.
    assert (await advance_clock(stack, 2 * 3600))["expired_sessions"] == 0
    assert (await stack.db.stock_report())[SLUG] == (0, 0, 0)
    active = await stack.db.fetch_all("SELECT id FROM order_lines WHERE reservation = 'active'")
    assert active == []
