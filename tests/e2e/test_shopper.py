"""A shopper in a real browser: catalog → Buy → hosted page → receipt."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from tests.live import CARD, LiveStack


async def fill_card(page: Page, number: str = CARD["number"]) -> None:
    await page.get_by_label("Email").first.fill(CARD["email"])
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry (MM/YY)").fill(CARD["expiry"])
    await page.get_by_label("CVC").fill(CARD["cvc"])
    await page.get_by_label("Cardholder name").fill(CARD["name"])


async def press_buy(page: Page, stack: LiveStack, name: str) -> None:
    await page.get_by_role("button", name=re.compile(f"^Buy {name}")).click()
    await page.wait_for_url(re.compile(re.escape(stack.sandbox_url) + r"/c/pay/cs_test_\w+"))


async def test_a_purchase_from_catalog_to_paid_receipt(
    page: Page, stack: LiveStack, artifacts_dir: Path
) -> None:
    await page.goto(stack.shop_url)
    await expect(page.get_by_role("heading", name="Enamel mug")).to_be_visible()
    await page.screenshot(path=artifacts_dir / "catalog.png", full_page=True)

    await press_buy(page, stack, "Enamel mug")
    await expect(page.get_by_text("€18.00").first).to_be_visible()
    await fill_card(page)
    await page.screenshot(path=artifacts_dir / "hosted-page.png", full_page=True)
    await page.get_by_role("button", name=re.compile("^Pay")).first.click()

    await page.wait_for_url(re.compile(re.escape(stack.shop_url) + r"/orders/[\w-]+\?session_id="))
    status = page.locator("#order-status")
    await expect(status).to_contain_text("Paid", timeout=5_000)
    await expect(page.get_by_text("shopper@example.com")).to_be_visible()
    await page.screenshot(path=artifacts_dir / "receipt.png", full_page=True)


async def test_the_receipt_flips_to_paid_by_polling(
    browser: Browser, stack: LiveStack, artifacts_dir: Path
) -> None:
    context = await browser.new_context()
    shopper = await context.new_page()
    await shopper.goto(stack.shop_url)
    await press_buy(shopper, stack, "Dotted notebook")
    session_id = shopper.url.rsplit("/", 1)[-1]
    row = await stack.db.fetch_one(
        "SELECT token FROM orders WHERE stripe_session_id = ?", (session_id,)
    )
    assert row is not None

    # A second tab shows the receipt while the payment is still open.
    receipt = await context.new_page()
    polls: list[int] = []
    receipt.on("response", lambda r: polls.append(r.status) if "/status?" in r.url else None)
    await receipt.goto(f"{stack.shop_url}/orders/{row['token']}")
    status = receipt.locator("#order-status")
    await expect(status).to_contain_text("Confirming payment")
    await receipt.screenshot(path=artifacts_dir / "receipt-confirming.png", full_page=True)
    # Mark the live region's content: an unchanged poll must leave this very node.
    await receipt.evaluate("document.getElementById('order-status').dataset.probe = 'kept'")
    for _ in range(80):  # two polls 2 s apart
        if polls.count(204) >= 2:
            break
        await asyncio.sleep(0.1)
    assert set(polls) == {204}
    await expect(status).to_have_attribute("data-probe", "kept")

    await fill_card(shopper)
    await shopper.get_by_role("button", name=re.compile("^Pay")).first.click()
    # No reload: only the poller can show this.
    await expect(status).to_contain_text("Paid", timeout=6_000)
    await expect(status).not_to_have_attribute("data-probe", "kept")
    assert polls[-1] == 200
    # Final: the poller has no trigger left, so polling stopped.
    await expect(receipt.locator("#order-poll")).not_to_have_attribute(
        "hx-trigger", re.compile(".")
    )
    await context.close()


async def test_cancelling_on_the_hosted_page(page: Page, stack: LiveStack) -> None:
    await page.goto(stack.shop_url)
    await press_buy(page, stack, "Canvas tote")
    await page.get_by_role("link", name=re.compile("Back")).click()
    await expect(page.get_by_role("heading", name="Payment cancelled")).to_be_visible()
    await page.get_by_role("link", name="Back to Canvas tote").click()
    await expect(page.get_by_role("heading", name="Canvas tote")).to_be_visible()
    assert page.url.endswith("#product-canvas-tote")


async def test_buying_works_without_javascript(browser: Browser, stack: LiveStack) -> None:
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(stack.shop_url)
    await press_buy(page, stack, "Mountain poster")
    await fill_card(page)
    await page.get_by_role("button", name=re.compile("^Pay")).first.click()
    await page.wait_for_url(re.compile(r"/orders/"))
    await expect(page.locator("#order-status")).to_contain_text("Paid")
    await context.close()


async def test_an_unavailable_product_shows_the_message_in_its_card(
    page: Page, stack: LiveStack
) -> None:
    await page.goto(stack.shop_url)
    await stack.db.execute("UPDATE products SET active = 0 WHERE slug = 'enamel-mug'")
    try:
        await page.get_by_role("button", name=re.compile("^Buy Enamel mug")).click()
        card = page.locator("#product-enamel-mug")
        await expect(card.locator(".card-message")).to_contain_text("not available")
        assert page.url.rstrip("/") == stack.shop_url
    finally:
        await stack.db.execute("UPDATE products SET active = 1 WHERE slug = 'enamel-mug'")


async def test_the_shop_reads_well_on_a_phone(
    browser: Browser, stack: LiveStack, artifacts_dir: Path
) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await context.new_page()
    await page.goto(stack.shop_url)
    # Cards stack in one column: no sideways scrolling on a phone.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await page.screenshot(path=artifacts_dir / "catalog-phone.png", full_page=True)
    await context.close()


async def pay_by_bank(page: Page, iban: str) -> None:
    await page.locator("#bank-email").fill(CARD["email"])
    await page.get_by_label("Account holder name").fill(CARD["name"])
    await page.get_by_label("IBAN").fill(iban)
    await page.get_by_role("button", name="Pay by bank debit").click()


async def test_a_bank_debit_shows_processing_then_paid(
    page: Page, stack: LiveStack, artifacts_dir: Path
) -> None:
    await page.goto(stack.shop_url)
    await press_buy(page, stack, "Canvas tote")
    await pay_by_bank(page, "DE89370400440532013000")
    await page.wait_for_url(re.compile(r"/orders/"))
    status = page.locator("#order-status")
    await expect(status).to_contain_text("Payment processing")
    await page.screenshot(path=artifacts_dir / "receipt-processing.png", full_page=True)
    # The debit settles later; the receipt's polling picks it up.
    await expect(status).to_contain_text("Paid", timeout=8_000)
    await expect(status.locator(".timeline li")).to_have_count(3)


async def test_a_failed_bank_debit_ends_failed(page: Page, stack: LiveStack) -> None:
    await page.goto(stack.shop_url)
    await press_buy(page, stack, "Dotted notebook")
    await pay_by_bank(page, "DE62370400440532013001")
    await page.wait_for_url(re.compile(r"/orders/"))
    status = page.locator("#order-status")
    await expect(status).to_contain_text("Payment failed", timeout=8_000)
