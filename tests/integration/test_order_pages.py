"""Order pages over real HTTP: never cached, and a prefetch of the cancel page changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.live import LiveStack, buy, live_database_url, pay


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveStack]:
    database = tmp_path_factory.mktemp("order-pages") / "shop.sqlite3"
    async with LiveStack(database, database_url=live_database_url(request)) as live:
        yield live


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def session_status(stack: LiveStack, pay_url: str) -> str:
    return str(stack.sandbox_state.sessions[pay_url.rsplit("/", 1)[-1]].status)


async def test_every_order_page_is_no_store(stack: LiveStack, http: aiohttp.ClientSession) -> None:
    token, pay_url = await buy(http, stack, "enamel-mug")
    assert (await pay(http, pay_url)).status == 303
    await stack.wait_for_status(token, "paid")
    session_id = (await stack.order(token))["stripe_session_id"]
    # Each shows the order and the shopper's email.
    for path in (
        f"/orders/{token}",
        f"/orders/{token}?session_id={session_id}",
        f"/orders/{token}/status",
        f"/orders/{token}/cancelled",
        "/orders/not-a-token",
    ):
        async with http.get(stack.shop_url + path) as response:
            assert response.status in (200, 404), path
            assert response.headers["Cache-Control"] == "no-store", path
    async with http.get(f"{stack.shop_url}/orders/{token}") as response:
        assert "shopper@example.com" in await response.text()
    # The catalog is not an order page.
    async with http.get(stack.shop_url + "/") as response:
        assert response.headers.get("Cache-Control") != "no-store"


@pytest.mark.parametrize(
    "prefetch",
    [
        {"Sec-Purpose": "prefetch"},
        {"Sec-Purpose": "prefetch;prerender"},
        {"Purpose": "prefetch"},
        {"X-Moz": "prefetch"},
    ],
    ids=lambda h: "=".join(next(iter(h.items()))),
)
async def test_a_prefetched_cancel_page_does_not_expire_the_session(
    stack: LiveStack, http: aiohttp.ClientSession, prefetch: dict[str, str]
) -> None:
    token, pay_url = await buy(http, stack, "canvas-tote")
    async with http.get(f"{stack.shop_url}/orders/{token}/cancelled", headers=prefetch) as r:
        # Not 2xx: browsers discard such a prefetch, so the real visit still comes.
        assert r.status == 503
        assert r.headers["Cache-Control"] == "no-store"
    assert session_status(stack, pay_url) == "open"
    assert (await stack.order(token))["status"] == "pending"
    # The shopper can still pay.
    assert (await pay(http, pay_url)).status == 303
    await stack.wait_for_status(token, "paid")


async def test_a_real_visit_to_the_cancel_page_still_expires(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, pay_url = await buy(http, stack, "canvas-tote")
    # Stripe's redirect there is a plain GET navigation.
    headers = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    async with http.get(f"{stack.shop_url}/orders/{token}/cancelled", headers=headers) as r:
        assert r.status == 200
        assert "Payment cancelled" in await r.text()
    assert session_status(stack, pay_url) == "expired"
    assert (await stack.order(token))["status"] == "expired"
