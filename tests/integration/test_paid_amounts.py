"""What was paid, checked and stored: the shipping among the rates offered, per-line amounts.

The shop and the sandbox on free ports, the real SDK, SQLite or PostgreSQL; the
shopper fills a cart with plain forms and the sandbox completes the session.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from storefront.catalog import read_products_file
from tests.integration.test_cart_journey import post, shopper
from tests.live import ROOT, LiveStack, live_database_url
from tests.money import assert_money_invariant

SHOP_ENV = {
    "STOREFRONT_SHIPPING_RATES": "Standard=500:3-5;Express=1500:1-2",
    "STOREFRONT_SHIPPING_COUNTRIES": "DE,FR,NL",
    "STOREFRONT_AUTOMATIC_TAX": "true",
    "STOREFRONT_ALLOW_PROMOTION_CODES": "true",
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LiveStack]:
    async with LiveStack(
        tmp_path / "shop.sqlite3", database_url=live_database_url(request), shop_env=SHOP_ENV
    ) as live:
        products = read_products_file(ROOT / "data" / "products.toml")
        await live.db.save_products(
            [dataclasses.replace(p, physical=p.slug != "mountain-poster") for p in products]
        )
        yield live
        await live.sandbox_state.wait_idle(15)
        assert_money_invariant(live.location, live.sandbox_state)


async def check_out(stack: LiveStack, **quantities: int) -> tuple[str, str]:
    """Fill a cart and check out; the session id and the order's token."""
    async with shopper() as http:
        for slug, quantity in quantities.items():
            response = await post(
                http, f"{stack.shop_url}/cart/add/{slug}", quantity=str(quantity)
            )
            assert response.status == 303
        response = await post(http, f"{stack.shop_url}/cart/checkout", attempt="a" * 20)
        assert response.status == 303
    session_id = response.headers["Location"].rsplit("/", 1)[-1]
    row = await stack.db.fetch_one(
        "SELECT token FROM orders WHERE stripe_session_id = ?", (session_id,)
    )
    assert row is not None
    return session_id, row["token"]


async def complete(stack: LiveStack, session_id: str, **fields: str) -> dict[str, Any]:
    """The shopper pays on the sandbox's page: an address, a rate, maybe a code."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{stack.sandbox_url}/_sandbox/sessions/{session_id}/complete",
            data={"country": "DE", **fields},
        ) as response,
    ):
        paid = await response.json()
        assert response.status == 200, paid
        return paid


def rate(stack: LiveStack, session_id: str, amount: int) -> str:
    """The id of the session's shipping option of that amount."""
    session = stack.sandbox_state.sessions[session_id].to_stripe()
    return next(
        o["shipping_rate"] for o in session["shipping_options"] if o["shipping_amount"] == amount
    )


async def test_a_shipping_rate_the_shop_offered_is_paid_without_a_flag(stack: LiveStack) -> None:
    session_id, token = await check_out(stack, **{"enamel-mug": 1})
    order = await stack.order(token)
    assert order["shipping_offered"] == "500,1500"
    paid = await complete(stack, session_id, shipping_rate=rate(stack, session_id, 1500))
    assert paid["total_details"]["amount_shipping"] == 1500
    await stack.wait_for_status(token, "paid")
    order = await stack.order(token)
    assert order["flag_reason"] is None and order["amount_shipping"] == 1500


async def test_a_shipping_amount_the_shop_never_offered_flags_the_order(stack: LiveStack) -> None:
    session_id, token = await check_out(stack, **{"enamel-mug": 1})
    # As if the shop had offered only 7.00 for this session: Stripe's 5.00 is not ours.
    await stack.db.execute(  # type: ignore[attr-defined]
        "UPDATE orders SET shipping_offered = '700' WHERE token = ?", (token,)
    )
    await complete(stack, session_id, shipping_rate=rate(stack, session_id, 500))
    for _ in range(200):
        order = await stack.order(token)
        if order["flag_reason"]:
            break
        await asyncio.sleep(0.05)
    assert "charges 500 eur for shipping, but the shop offered 700" in order["flag_reason"]
    assert order["status"] == "pending"  # a mismatch never moves the order


async def test_a_digital_order_was_offered_no_shipping(stack: LiveStack) -> None:
    session_id, token = await check_out(stack, **{"mountain-poster": 2})
    assert (await stack.order(token))["shipping_offered"] == ""
    await complete(stack, session_id)
    await stack.wait_for_status(token, "paid")
    assert (await stack.order(token))["flag_reason"] is None
