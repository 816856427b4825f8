"""A shopper fills a cart in a real browser and pays with an address, a rate and a code.

The same journey with JavaScript on (htmx), with it off (plain forms), and at
phone width; screenshots go to test-artifacts/.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from storefront.catalog import read_products_file
from storefront.payments import STRIPE_API_VERSION
from tests.e2e.test_shopper import fill_card
from tests.live import ROOT, LiveStack
from tests.money import assert_money_invariant

SHOP_ENV = {
    "STOREFRONT_SHIPPING_RATES": "Standard=500:3-5;Express=1500:1-2",
    "STOREFRONT_SHIPPING_COUNTRIES": "DE,FR,NL",
    "STOREFRONT_AUTOMATIC_TAX": "true",
    "STOREFRONT_ALLOW_PROMOTION_CODES": "true",
    "STOREFRONT_SHOP_NAME": "Corner Shop",
}
CODE = "WELCOME10"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveStack]:
    database = tmp_path_factory.mktemp("e2e-cart") / "shop.sqlite3"
    async with LiveStack(database, shop_env=SHOP_ENV) as live:
        products = read_products_file(ROOT / "data" / "products.toml")
        await live.db.save_products(
            [dataclasses.replace(p, physical=True, stock=50) for p in products]
        )
        headers = {"Authorization": "Bearer sk_test_sandbox", "Stripe-Version": STRIPE_API_VERSION}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(
                f"{live.sandbox_url}/v1/coupons", data={"percent_off": "10", "duration": "forever"}
            ) as r:
                coupon = await r.json()
            async with http.post(
                f"{live.sandbox_url}/v1/promotion_codes",
                data={
                    "promotion[type]": "coupon",
                    "promotion[coupon]": coupon["id"],
                    "code": CODE,
                },
            ) as r:
                assert r.status == 200, await r.text()
        yield live
        await live.sandbox_state.wait_idle(15)
        assert_money_invariant(live.database, live.sandbox_state)


async def add(page: Page, stack: LiveStack, slug: str, quantity: int, javascript: bool) -> None:
    card = page.locator(f"#product-{slug}")
    await card.get_by_label(re.compile("^Quantity")).fill(str(quantity))
    await card.get_by_role("button", name="Add to cart").click()
    if javascript:
        await expect(card.locator(".card-message")).to_contain_text(f"Added {quantity}")
    else:
        await page.wait_for_url(f"{stack.shop_url}/cart")
        await page.goto(stack.shop_url)


@pytest.mark.parametrize(
    ("javascript", "width"),
    [(True, 1200), (False, 1200), (True, 390)],
    ids=["htmx", "no-js", "phone"],
)
async def test_a_cart_from_catalog_to_paid_receipt(
    browser: Browser, stack: LiveStack, artifacts_dir: Path, javascript: bool, width: int
) -> None:
    name = f"cart-{'js' if javascript else 'nojs'}-{width}"
    context = await browser.new_context(
        java_script_enabled=javascript, viewport={"width": width, "height": 900}
    )
    page = await context.new_page()
    page.set_default_timeout(10_000)
    try:
        await page.goto(stack.shop_url)
        await expect(page.get_by_role("link", name="Corner Shop")).to_be_visible()
        await add(page, stack, "enamel-mug", 2, javascript)
        await add(page, stack, "canvas-tote", 1, javascript)
        await add(page, stack, "dotted-notebook", 3, javascript)
        badge = page.locator("#cart-badge .cart-count")
        await expect(badge).to_have_text("6")
        await page.screenshot(path=artifacts_dir / f"{name}-catalog.png", full_page=True)

        await page.locator("#cart-badge").click()
        await page.wait_for_url(f"{stack.shop_url}/cart")
        tote = page.locator("#line-canvas-tote")
        await tote.get_by_label(re.compile("^Quantity")).fill("3")
        await tote.get_by_role("button", name="Update").click()
        await expect(page.locator("#line-canvas-tote .amount")).to_have_text("€66.00")
        await page.get_by_role("button", name="Remove Dotted notebook").click()
        await expect(page.locator("#line-dotted-notebook")).to_have_count(0)
        await expect(badge).to_have_text("5")
        await expect(page.locator("#cart-subtotal")).to_have_text("€102.00")
        await page.screenshot(path=artifacts_dir / f"{name}-cart.png", full_page=True)

        await page.get_by_role("button", name="Check out").click()
        await page.wait_for_url(re.compile(re.escape(stack.sandbox_url) + r"/c/pay/cs_test_\w+"))
        await page.get_by_label("Full name").fill("Ada Shopper")
        await page.get_by_label("Address line 1").fill("Hauptstraße 1")
        await page.get_by_label("Postal code").fill("10115")
        await page.get_by_label("City").fill("Berlin")
        await page.get_by_label("Country").select_option("DE")
        await page.get_by_role("radio", name=re.compile("^Express")).check()
        await page.get_by_role("button", name="Save address and update total").click()
        await page.get_by_label("Promotion code").fill(CODE)
        await page.get_by_role("button", name="Apply").click()
        # €102.00 - €10.20 + €15.00 shipping, then 19 % German tax on both.
        await expect(page.get_by_test_id("discount")).to_have_text("\u2212€10.20")
        await fill_card(page)
        await page.screenshot(path=artifacts_dir / f"{name}-hosted.png", full_page=True)
        await page.get_by_role("button", name=re.compile("^Pay €")).click()

        await page.wait_for_url(re.compile(re.escape(stack.shop_url) + r"/orders/[\w-]+"))
        await expect(page.locator("#order-status")).to_contain_text("Paid", timeout=10_000)
        totals = page.locator("#order-totals")
        for text in ("Discount", "\u2212€10.20", "Shipping", "€15.00", "Tax", "Berlin"):
            await expect(totals).to_contain_text(text)
        lines = page.locator(".order-lines")
        await expect(lines).to_contain_text("Enamel mug")
        await expect(lines).to_contain_text("Canvas tote")
        await expect(lines).not_to_contain_text("Dotted notebook")
        await expect(page.locator(".order-number")).to_have_text(re.compile(r"^\w{3}-\w{5}$"))
        await expect(page.locator("body")).not_to_contain_text("via webhook")
        await page.screenshot(path=artifacts_dir / f"{name}-receipt.png", full_page=True)
        if width <= 400:
            scroll = await page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width
    finally:
        await context.close()
