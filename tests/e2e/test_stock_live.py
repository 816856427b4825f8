"""Sold out, live, in a real browser: a second open catalog sees the last mug go."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from storefront.catalog import read_products_file
from tests.e2e.test_shopper import press_buy
from tests.live import ROOT, LiveStack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveStack]:
    database = tmp_path_factory.mktemp("e2e-stock") / "shop.sqlite3"
    async with LiveStack(database, shop_env={"STOREFRONT_STOCK_POLL_INTERVAL": "1"}) as live:
        products = read_products_file(ROOT / "data" / "products.toml")
        await live.db.save_products(
            [dataclasses.replace(p, stock=1 if p.slug == "enamel-mug" else None) for p in products]
        )
        yield live


async def test_a_second_page_sees_the_card_go_sold_out_without_reload(
    browser: Browser, stack: LiveStack, artifacts_dir: Path
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    buyer, watcher = await context.new_page(), await context.new_page()
    await watcher.goto(stack.shop_url)
    card = watcher.locator("#product-enamel-mug")
    await expect(card.get_by_role("button", name=re.compile("^Buy Enamel mug"))).to_be_enabled()
    # A mark only this very document carries: a reload would drop it.
    await watcher.evaluate("window.stillTheSamePage = true")

    await buyer.goto(stack.shop_url)
    await press_buy(buyer, stack, "Enamel mug")

    await expect(card.locator(".stock-out")).to_have_text("Sold out", timeout=8_000)
    await expect(card.locator(".buy-button")).to_be_disabled()
    await expect(card.get_by_role("button", name="Add to cart")).to_be_disabled()
    assert await watcher.evaluate("window.stillTheSamePage === true")
    # Other cards keep selling.
    await expect(
        watcher.locator("#product-canvas-tote").get_by_role("button", name=re.compile("^Buy"))
    ).to_be_enabled()
    await watcher.screenshot(path=artifacts_dir / "sold-out-live.png", full_page=True)
    await context.close()
