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
from tests.integration.test_cart_journey import SHOP_ENV, post, shopper, stripe_post
from tests.live import ROOT, LiveStack, live_database_url
from tests.money import assert_money_invariant


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


async def promotion(stack: LiveStack, code: str = "TENOFF") -> None:
    """A 10 % promotion code, made as the shopkeeper's Dashboard would."""
    coupon = await stripe_post(stack, "coupons", {"percent_off": "10"})
    await stripe_post(
        stack,
        "promotion_codes",
        {"promotion[type]": "coupon", "promotion[coupon]": coupon["id"], "code": code},
    )


async def assert_lines_are_stripes(stack: LiveStack, token: str, session_id: str) -> None:
    """The order's lines hold Stripe's per-line amounts, and they add up to what was paid."""
    order = await stack.order(token)
    stripe_lines = stack.sandbox_state.sessions[session_id].line_items_list()["data"]
    # After a webhook the line-items task asks Stripe for them, once the answer is sent.
    for _ in range(200):
        ours = await stack.db.fetch_all(
            "SELECT name, quantity, unit_amount, amount_discount, amount_tax, amount_total"
            " FROM order_lines WHERE order_id = ? ORDER BY id",
            (order["id"],),
        )
        if all(r["amount_total"] is not None for r in ours):
            break
        await asyncio.sleep(0.05)
    order = await stack.order(token)
    assert order["flag_reason"] is None
    assert [
        (r["quantity"], r["amount_discount"], r["amount_tax"], r["amount_total"]) for r in ours
    ] == [
        (x["quantity"], x["amount_discount"], x["amount_tax"], x["amount_total"])
        for x in stripe_lines
    ]
    assert all(r["amount_discount"] > 0 and r["amount_tax"] > 0 for r in ours)
    assert sum(r["amount_discount"] for r in ours) == order["amount_discount"]
    # What the lines do not account for is shipping and the tax on it.
    left = order["amount_paid"] - sum(r["amount_total"] for r in ours)
    assert left == order["amount_shipping"] + order["amount_tax"] - sum(
        r["amount_tax"] for r in ours
    )


async def test_each_line_stores_what_stripe_says_it_cost(stack: LiveStack) -> None:
    await promotion(stack)
    session_id, token = await check_out(stack, **{"enamel-mug": 2, "canvas-tote": 1})
    await complete(
        stack, session_id, shipping_rate=rate(stack, session_id, 500), promotion_code="TENOFF"
    )
    await stack.wait_for_status(token, "paid")
    await assert_lines_are_stripes(stack, token, session_id)
    async with aiohttp.ClientSession() as http, http.get(f"{stack.shop_url}/orders/{token}") as r:
        receipt = await r.text()
    order = await stack.order(token)
    line = await stack.db.fetch_one(
        "SELECT amount_discount, amount_total FROM order_lines WHERE order_id = ? ORDER BY id",
        (order["id"],),
    )
    assert line is not None
    for amount in (line["amount_discount"], line["amount_total"]):
        assert f"€{amount / 100:.2f}" in receipt


async def test_the_success_page_stores_the_lines_when_the_webhook_is_lost(
    tmp_path: Path,
) -> None:
    async with LiveStack(
        tmp_path / "shop.sqlite3", shop_env=SHOP_ENV, drop_first_rate=1.0, retry_schedule=()
    ) as lost:
        products = read_products_file(ROOT / "data" / "products.toml")
        await lost.db.save_products([dataclasses.replace(p, physical=True) for p in products])
        await promotion(lost)
        session_id, token = await check_out(lost, **{"enamel-mug": 1, "dotted-notebook": 3})
        await complete(
            lost, session_id, shipping_rate=rate(lost, session_id, 1500), promotion_code="TENOFF"
        )
        assert (await lost.order(token))["status"] == "pending"  # no webhook came
        url = f"{lost.shop_url}/orders/{token}?session_id={session_id}"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
        assert (await lost.order(token))["status"] == "paid"
        await assert_lines_are_stripes(lost, token, session_id)
        assert_money_invariant(lost.location, lost.sandbox_state)


async def test_without_discount_or_tax_the_lines_are_stored_without_asking_stripe(
    tmp_path: Path,
) -> None:
    env = {**SHOP_ENV, "STOREFRONT_AUTOMATIC_TAX": "false"}
    async with LiveStack(tmp_path / "shop.sqlite3", shop_env=env) as live:
        products = read_products_file(ROOT / "data" / "products.toml")
        await live.db.save_products(
            [dataclasses.replace(p, physical=p.slug != "mountain-poster") for p in products]
        )
        session_id, token = await check_out(live, **{"mountain-poster": 2, "enamel-mug": 1})
        before = live.sandbox_state.stats["api_requests"]
        await complete(live, session_id, shipping_rate=rate(live, session_id, 500))
        await live.wait_for_status(token, "paid")
        order = await live.order(token)
        rows = await live.db.fetch_all(
            "SELECT quantity, unit_amount, amount_discount, amount_tax, amount_total"
            " FROM order_lines WHERE order_id = ? ORDER BY id",
            (order["id"],),
        )
        assert [(r["amount_discount"], r["amount_tax"]) for r in rows] == [(0, 0), (0, 0)]
        assert [r["amount_total"] for r in rows] == [
            r["unit_amount"] * r["quantity"] for r in rows
        ]
        assert sum(r["amount_total"] for r in rows) + 500 == order["amount_paid"]
        await live.sandbox_state.wait_idle(15)
        # The webhook applied the payment without a line-items call.
        assert live.sandbox_state.stats["api_requests"] == before
        assert_money_invariant(live.location, live.sandbox_state)
