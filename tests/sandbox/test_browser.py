"""The hosted page in a real browser: Chromium without any JavaScript of ours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import stripe

from .support import Sandbox, session_params


async def browser_session(sandbox: Sandbox, **overrides: Any) -> stripe.checkout.Session:
    """A session whose success and cancel URLs land on the receiver's stub shop pages."""
    params = session_params(
        success_url=sandbox.receiver.url + "/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=sandbox.receiver.url + "/cancel",
        **overrides,
    )
    return await sandbox.client.v1.checkout.sessions.create_async(params=params)


async def fill_card(page: Any, number: str) -> None:
    await page.get_by_label("Email").first.fill("shopper@example.com")
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry (MM/YY)").fill("12/34")
    await page.get_by_label("CVC").fill("123")
    await page.get_by_label("Cardholder name").fill("Ada Shopper")


async def test_hosted_page_pays_with_4242_and_lands_on_success(
    sandbox: Sandbox, page: Any, artifacts_dir: Path
) -> None:
    session = await browser_session(sandbox, allowed_payment_method_types=["card", "sepa_debit"])
    await page.goto(session.url)
    assert await page.get_by_text("Enamel mug").is_visible()
    assert "€39.98" in await page.get_by_test_id("total").inner_text()
    await fill_card(page, "4242 4242 4242 4242")
    await page.screenshot(path=str(artifacts_dir / "sandbox-hosted-page.png"), full_page=True)
    await page.get_by_role("button", name="Pay €39.98").click()
    await page.wait_for_url(f"**/success?session_id={session.id}")
    assert await page.get_by_role("heading", name="Thanks for your order").is_visible()
    paid = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert paid.payment_status == "paid"


async def test_declined_card_shows_the_message_and_stays(sandbox: Sandbox, page: Any) -> None:
    session = await browser_session(sandbox)
    await page.goto(session.url)
    await fill_card(page, "4000 0000 0000 0002")
    await page.get_by_role("button", name="Pay €39.98").click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert await alert.inner_text() == "Your card was declined."
    assert f"/c/pay/{session.id}" in page.url
    assert await page.get_by_label("Card number").input_value() == ""
    assert await page.get_by_label("Cardholder name").input_value() == "Ada Shopper"
    still = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert still.status == "open"


async def test_authentication_can_be_completed(sandbox: Sandbox, page: Any) -> None:
    session = await browser_session(sandbox)
    await page.goto(session.url)
    await fill_card(page, "4000 0025 0000 3155")
    await page.get_by_role("button", name="Pay €39.98").click()
    await page.wait_for_url(f"**/c/pay/{session.id}/authenticate")
    await page.get_by_role("button", name="Complete authentication").click()
    await page.wait_for_url("**/success?session_id=*")
    paid = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert paid.payment_status == "paid"


async def test_failed_authentication_returns_to_the_form(sandbox: Sandbox, page: Any) -> None:
    session = await browser_session(sandbox)
    await page.goto(session.url)
    await fill_card(page, "4000 0025 0000 3155")
    await page.get_by_role("button", name="Pay €39.98").click()
    await page.get_by_role("button", name="Fail authentication").click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "We are unable to authenticate your payment method" in await alert.inner_text()
    still = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert still.status == "open"


async def test_bank_debit_completes_then_succeeds(sandbox: Sandbox, page: Any) -> None:
    session = await browser_session(sandbox, allowed_payment_method_types=["card", "sepa_debit"])
    await page.goto(session.url)
    await page.locator("#bank-email").fill("shopper@example.com")
    await page.get_by_label("Account holder name").fill("Ada Shopper")
    await page.get_by_label("IBAN").fill("DE89370400440532013000")
    await page.get_by_role("button", name="Pay by bank debit").click()
    await page.wait_for_url("**/success?session_id=*")
    await sandbox.receiver.wait_for(
        lambda: (
            "checkout.session.async_payment_succeeded" in sandbox.receiver.types_about(session.id)
        )
    )
    # Read from the events: a retrieve may come after the short test settlement delay.
    events = {
        r.event["type"]: r.event["data"]["object"] for r in sandbox.receiver.about(session.id)
    }
    completed = events["checkout.session.completed"]
    assert (completed["status"], completed["payment_status"]) == ("complete", "unpaid")
    assert events["checkout.session.async_payment_succeeded"]["payment_status"] == "paid"


async def test_expired_session_page(sandbox: Sandbox, page: Any) -> None:
    session = await browser_session(sandbox)
    await sandbox.client.v1.checkout.sessions.expire_async(session.id)
    await page.goto(session.url)
    heading = page.get_by_role("heading", level=1)
    assert await heading.inner_text() == "This checkout session has expired"
    assert await page.get_by_role("button").count() == 0
    await page.get_by_role("link", name="← Back").click()
    await page.wait_for_url("**/cancel")
