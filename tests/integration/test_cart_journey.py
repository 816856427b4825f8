"""A cart bought over real HTTP: quantities, shipping, a promotion code and tax.

The shop and the sandbox on free ports, the real SDK, real SQLite or PostgreSQL; the shopper
is an HTTP client with a cookie jar, pressing plain forms (no JavaScript).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from storefront.catalog import read_products_file
from storefront.payments import STRIPE_API_VERSION
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
            [
                dataclasses.replace(p, physical=p.slug != "mountain-poster", stock=20)
                for p in products
            ]
        )
        yield live
        await live.sandbox_state.wait_idle(15)
        assert_money_invariant(live.location, live.sandbox_state)


async def stripe_post(stack: LiveStack, path: str, data: dict[str, str]) -> dict[str, Any]:
    """Create an object in the sandbox's API as the shopkeeper's Dashboard would."""
    headers = {"Authorization": "Bearer sk_test_sandbox", "Stripe-Version": STRIPE_API_VERSION}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{stack.sandbox_url}/v1/{path}", data=data, headers=headers) as r,
    ):
        body = await r.json()
        assert r.status == 200, body
        return body


def shopper() -> aiohttp.ClientSession:
    # unsafe: keep the cart cookie of an IP address host, as a browser does.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def post(http: aiohttp.ClientSession, url: str, **data: str) -> aiohttp.ClientResponse:
    async with http.post(url, data=data, allow_redirects=False) as response:
        await response.read()
        return response


async def test_a_cart_with_shipping_a_code_and_tax_is_paid_and_recorded(stack: LiveStack) -> None:
    coupon = await stripe_post(stack, "coupons", {"percent_off": "10"})
    await stripe_post(
        stack,
        "promotion_codes",
        {"promotion[type]": "coupon", "promotion[coupon]": coupon["id"], "code": "WELCOME10"},
    )
    shop = stack.shop_url
    async with shopper() as http:
        assert (await post(http, f"{shop}/cart/add/enamel-mug", quantity="2")).status == 303
        assert (await post(http, f"{shop}/cart/add/canvas-tote", quantity="1")).status == 303
        assert (await post(http, f"{shop}/cart/add/dotted-notebook", quantity="4")).status == 303
        cookie = next(c for c in http.cookie_jar if c.key == "cart")
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
        assert (await post(http, f"{shop}/cart/items/canvas-tote", quantity="3")).status == 303
        assert (await post(http, f"{shop}/cart/items/dotted-notebook/remove")).status == 303
        async with http.get(f"{shop}/cart") as response:
            page = await response.text()
        assert "Dotted notebook" not in page and "Canvas tote" in page
        response = await post(http, f"{shop}/cart/checkout", attempt="a" * 20)
        assert response.status == 303
        pay_url = response.headers["Location"]
    session_id = pay_url.rsplit("/", 1)[-1]
    session = stack.sandbox_state.sessions[session_id].to_stripe()
    assert [c for c in session["shipping_address_collection"]["allowed_countries"]] == [
        "DE",
        "FR",
        "NL",
    ]
    rates = [o["shipping_rate"] for o in session["shipping_options"]]
    assert len(rates) == 2
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{stack.sandbox_url}/_sandbox/sessions/{session_id}/complete",
            data={"country": "DE", "shipping_rate": rates[1], "promotion_code": "WELCOME10"},
        ) as response,
    ):
        paid = await response.json()
        assert response.status == 200, paid
    row = await stack.db.fetch_one(
        "SELECT token FROM orders WHERE stripe_session_id = ?", (session_id,)
    )
    await stack.wait_for_status(row["token"], "paid")
    order = await stack.order(row["token"])
    details = paid["total_details"]
    assert details["amount_discount"] > 0 and details["amount_tax"] > 0
    assert details["amount_shipping"] == 1500
    assert order["amount_subtotal"] == paid["amount_subtotal"]
    assert (
        order["amount_discount"],
        order["amount_shipping"],
        order["amount_tax"],
        order["amount_paid"],
    ) == (
        details["amount_discount"],
        details["amount_shipping"],
        details["amount_tax"],
        paid["amount_total"],
    )
    assert order["flag_reason"] is None
    assert re.fullmatch(r"[2-9A-Z]{3}-[2-9A-Z]{5}", order["order_number"])
    report = await stack.db.stock_report()
    assert report["enamel-mug"] == (18, 0, 0) and report["canvas-tote"] == (17, 0, 0)
    # The cart it was bought from is empty now.
    assert await stack.db.fetch_all("SELECT * FROM cart_items") == []
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{stack.shop_url}/orders/{row['token']}") as response,
    ):
        receipt = await response.text()
    for text in (
        order["order_number"],
        "Enamel mug",
        "Canvas tote",
        "Discount",
        "Shipping",
        "Tax",
        "Paid",
        "Shipping to",
    ):
        assert text in receipt, text
    assert "via webhook" not in receipt


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "at least 1"),
        ("-2", "whole number"),
        ("1.5", "whole number"),
        ("two", "whole number"),
        ("100", "at most 99"),
        ("", "whole number"),
        ("9" * 40, "whole number"),
    ],
)
async def test_bad_quantities_change_nothing(
    stack: LiveStack, quantity: str, message: str
) -> None:
    shop = stack.shop_url
    async with shopper() as http:
        assert (await post(http, f"{shop}/cart/add/enamel-mug", quantity="2")).status == 303
        for url in (f"{shop}/cart/add/enamel-mug", f"{shop}/cart/items/enamel-mug"):
            async with http.post(url, data={"quantity": quantity}) as response:
                assert response.status == 400
                assert message in await response.text()
    rows = await stack.db.fetch_all("SELECT quantity FROM cart_items")
    assert [r["quantity"] for r in rows] == [2]


async def test_a_tampered_cookie_is_no_cart_and_a_retired_product_is_dropped(
    stack: LiveStack,
) -> None:
    shop = stack.shop_url
    async with shopper() as http:
        assert (await post(http, f"{shop}/cart/add/enamel-mug", quantity="1")).status == 303
        assert (await post(http, f"{shop}/cart/add/canvas-tote", quantity="1")).status == 303
        products = read_products_file(ROOT / "data" / "products.toml")
        tote = next(p for p in products if p.slug == "canvas-tote")
        await stack.db.save_products([dataclasses.replace(tote, active=False)])
        async with http.get(f"{shop}/cart") as response:
            page = await response.text()
        assert "No longer sold" in page and "Canvas tote" in page
        async with http.get(f"{shop}/cart") as response:
            assert "Canvas tote" not in await response.text()
    for forged in ("x" * 32, "../../etc", "' OR 1=1 --"):
        async with (
            aiohttp.ClientSession(cookies={"cart": forged}) as http,
            http.get(f"{shop}/cart") as response,
        ):
            assert "Your cart is empty" in await response.text()
    async with (
        aiohttp.ClientSession(cookies={"cart": "x" * 32}) as http,
        http.post(f"{shop}/cart/checkout", data={"attempt": "b" * 20}) as response,
    ):
        assert response.status == 409
        assert "empty" in await response.text()


async def test_mixed_currencies_are_refused_and_a_new_price_shows_before_paying(
    stack: LiveStack,
) -> None:
    shop = stack.shop_url
    products = {p.slug: p for p in read_products_file(ROOT / "data" / "products.toml")}
    async with shopper() as http:
        assert (await post(http, f"{shop}/cart/add/enamel-mug", quantity="1")).status == 303
        await stack.db.save_products(
            [dataclasses.replace(products["enamel-mug"], unit_amount=2345)]
        )
        async with http.get(f"{shop}/cart") as response:
            assert "23.45" in await response.text()
        await stack.db.save_products(
            [dataclasses.replace(products["canvas-tote"], currency="usd")]
        )
        assert (await post(http, f"{shop}/cart/add/canvas-tote", quantity="1")).status == 303
        async with http.post(f"{shop}/cart/checkout", data={"attempt": "c" * 20}) as response:
            assert response.status == 409
            assert "different currencies" in await response.text()
    assert await stack.db.fetch_all("SELECT * FROM orders") == []


async def test_asking_for_more_than_is_left_reserves_nothing(stack: LiveStack) -> None:
    products = {p.slug: p for p in read_products_file(ROOT / "data" / "products.toml")}
    await stack.db.save_products(
        [
            dataclasses.replace(products["enamel-mug"], stock=3),
            dataclasses.replace(products["canvas-tote"], stock=10),
        ]
    )
    shop = stack.shop_url
    async with shopper() as http:
        assert (await post(http, f"{shop}/cart/add/canvas-tote", quantity="2")).status == 303
        assert (await post(http, f"{shop}/cart/add/enamel-mug", quantity="4")).status == 303
        async with http.get(f"{shop}/cart") as response:
            assert "Only 3 left" in await response.text()
        async with http.post(f"{shop}/cart/checkout", data={"attempt": "d" * 20}) as response:
            assert response.status == 409
            assert "only 3 of Enamel mug left" in await response.text()
    report = await stack.db.stock_report()
    assert report["enamel-mug"] == (3, 0, 0) and report["canvas-tote"] == (10, 0, 0)
    assert await stack.db.fetch_all("SELECT * FROM orders") == []


async def test_forged_and_oversized_forms_change_nothing(stack: LiveStack) -> None:
    shop = stack.shop_url
    async with shopper() as http:
        assert (await post(http, f"{shop}/cart/add/enamel-mug", quantity="1")).status == 303
        async with http.post(
            f"{shop}/cart/items/enamel-mug",
            data={"quantity": "5"},
            headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        ) as response:
            assert response.status == 403
        async with http.post(
            f"{shop}/cart/add/enamel-mug", data={"quantity": "1", "pad": "x" * 400_000}
        ) as response:
            assert response.status == 413
        async with http.post(f"{shop}/cart/add/no-such-thing", data={"quantity": "1"}) as response:
            assert response.status == 404
    rows = await stack.db.fetch_all("SELECT quantity FROM cart_items")
    assert [r["quantity"] for r in rows] == [1]
