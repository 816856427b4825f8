"""The shopkeeper in a real browser: sign in, find an order, refund part, ship, see the email."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from storefront.admin.auth import Passwords
from storefront.serving import free_port
from tests.admin.support import EMAIL, PASSWORD
from tests.live import CARD, LiveStack, buy


@pytest.fixture
async def shop_with_mail(tmp_path: Path) -> AsyncIterator[LiveStack]:
    port = free_port()
    env = {
        "STOREFRONT_SMTP_PORT": str(port),
        "STOREFRONT_OUTBOX_INTERVAL": "0.2",
        "STOREFRONT_SHOPKEEPER_EMAIL": "keeper@shop.example",
    }
    async with LiveStack(tmp_path / "shop.sqlite3", env, smtp_port=port) as live:
        await live.db.add_staff(EMAIL, Passwords().hash(PASSWORD))
        yield live


async def paid_by(stack: LiveStack, email: str) -> str:
    """Buy and pay the mug as ``email``; the order's token."""
    async with aiohttp.ClientSession() as http:
        token, pay_url = await buy(http, stack, "enamel-mug")
        async with http.post(
            f"{pay_url}/card", data={**CARD, "email": email}, allow_redirects=False
        ) as answer:
            assert answer.status in (302, 303)
    await stack.wait_for_status(token, "paid")
    return token


async def test_sign_in_find_refund_part_watch_the_list_ship_and_see_the_email(
    browser: Browser, shop_with_mail: LiveStack, artifacts_dir: Path
) -> None:
    stack = shop_with_mail
    await paid_by(stack, "someone@example.com")
    token = await paid_by(stack, "ada@example.com")
    order_id = (await stack.order(token))["id"]

    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        listing = await context.new_page()
        listing.set_default_timeout(10_000)
        await listing.goto(f"{stack.shop_url}/admin/")
        await listing.wait_for_url(re.compile(r".*/admin/login$"))
        await listing.get_by_label("Email").fill(EMAIL)
        await listing.get_by_label("Password").fill(PASSWORD)
        await listing.get_by_role("button", name="Sign in").click()
        await expect(listing.get_by_role("heading", name="Orders")).to_be_visible()

        await listing.get_by_label("Search").fill("ada@")
        await listing.get_by_role("button", name="Filter").click()
        table = listing.locator("#orders-table")
        await expect(table).to_contain_text("1 order")
        await expect(table).to_contain_text("ada@example.com")
        await expect(table).not_to_contain_text("someone@example.com")
        await listing.screenshot(path=artifacts_dir / "admin-orders-search.png", full_page=True)

        # A second tab refunds part; the first one's polled table shows it without a reload.
        detail = await context.new_page()
        detail.set_default_timeout(10_000)
        await detail.goto(f"{stack.shop_url}/admin/orders/{order_id}")
        await detail.get_by_label("Refund amount").fill("5.00")
        await detail.get_by_role("button", name="Refund").click()
        await expect(detail.get_by_role("status")).to_contain_text("requested")
        await expect(table).to_contain_text("partially refunded (€5.00)", timeout=15_000)
        await listing.screenshot(path=artifacts_dir / "admin-orders-live.png", full_page=True)

        await detail.reload()
        await expect(detail.locator("#order-refunded")).to_have_text("€5.00")
        await detail.get_by_label("Tracking note").fill("Parcel 7")
        await detail.get_by_role("button", name="Mark shipped").click()
        await expect(detail.locator("#order-fulfilment")).to_contain_text("shipped · Parcel 7")
        await detail.screenshot(path=artifacts_dir / "admin-order.png", full_page=True)

        mail = await context.new_page()
        await mail.goto(f"{stack.sandbox_url}/_sandbox/mail")
        number = (await stack.order(token))["order_number"]
        subject = f"Your order #{number} is on its way"
        for _ in range(50):
            if await mail.get_by_text(subject).count():
                break
            await mail.wait_for_timeout(200)
            await mail.reload()
        await expect(mail.get_by_text(subject)).to_be_visible()
        await mail.screenshot(path=artifacts_dir / "admin-shipped-email.png", full_page=True)
    finally:
        await context.close()
