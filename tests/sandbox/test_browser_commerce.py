"""The hosted page in Chromium: a phone's width, a cart with address, rate and code, a11y."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import stripe

from .support import Sandbox, session_params
from .test_browser import fill_card

PHONE = {"width": 390, "height": 844}
LONG_NAME = "Hand-thrown stoneware breakfast bowl with speckled glaze (set of four)"


async def cart_session(sandbox: Sandbox, **overrides: Any) -> stripe.checkout.Session:
    """A three-line cart with shipping, promotion codes and tax, landing on the stub shop."""
    v1 = sandbox.client.v1
    coupon = await v1.coupons.create_async(params={"percent_off": 20, "name": "Spring"})
    code = f"SPRING{coupon.id}"
    await v1.promotion_codes.create_async(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": code}
    )
    params = session_params(
        success_url=sandbox.receiver.url + "/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=sandbox.receiver.url + "/cancel",
        line_items=[
            {
                "quantity": 3,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 2400,
                    "product_data": {"name": LONG_NAME},
                },
            },
            {
                "quantity": 1,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1000,
                    "product_data": {"name": "Tea towel"},
                },
            },
        ],
        shipping_address_collection={"allowed_countries": ["DE", "FR"]},
        shipping_options=[
            {
                "shipping_rate_data": {
                    "display_name": "Standard",
                    "fixed_amount": {"amount": 500, "currency": "eur"},
                }
            },
            {
                "shipping_rate_data": {
                    "display_name": "Express",
                    "fixed_amount": {"amount": 1500, "currency": "eur"},
                    "delivery_estimate": {
                        "minimum": {"unit": "business_day", "value": 1},
                        "maximum": {"unit": "business_day", "value": 2},
                    },
                }
            },
        ],
        allow_promotion_codes=True,
        automatic_tax={"enabled": True},
        allowed_payment_method_types=["card", "sepa_debit"],
        metadata={"code": code},
        **overrides,
    )
    return await v1.checkout.sessions.create_async(params=params)


async def overflow(page: Any) -> int:
    """How far the page is wider than the viewport, in CSS pixels."""
    return await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


async def test_the_page_fits_a_phone(sandbox: Sandbox, page: Any, artifacts_dir: Path) -> None:
    await page.set_viewport_size(PHONE)
    session = await cart_session(sandbox)
    await page.goto(session.url)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert await overflow(page) <= 0
    for locator in (page.get_by_test_id("total-due"), page.get_by_label("CVC")):
        box = await locator.bounding_box()
        assert box is not None and box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"], box
    await page.screenshot(path=str(artifacts_dir / "sandbox-phone.png"), full_page=True)


async def test_a_cart_journey_with_address_rate_and_code(
    sandbox: Sandbox, page: Any, artifacts_dir: Path
) -> None:
    await page.set_viewport_size(PHONE)
    session = await cart_session(sandbox)
    await page.goto(session.url)
    # Before an address: the first rate is chosen and tax waits for a location.
    assert await page.get_by_role("radio", name=re.compile("^Standard")).is_checked()
    assert await page.get_by_test_id("tax").inner_text() == "Enter address to calculate"
    await page.get_by_label("Full name").fill("Ada Shopper")
    await page.get_by_label("Address line 1").fill("12 rue de la Paix")
    await page.get_by_label("Postal code").fill("75002")
    await page.get_by_label("City").fill("Paris")
    await page.get_by_label("Country").select_option("FR")
    await page.get_by_role("radio", name=re.compile("^Express")).check()
    await page.get_by_role("button", name="Save address and update total").click()
    await page.get_by_label("Promotion code").fill(session.metadata["code"].lower())
    await page.get_by_role("button", name="Apply").click()
    # 3 x 24.00 + 10.00 = 82.00; 20 % off = 16.40; express 15.00;
    # TVA 20 %: 11.52 + 1.60 on the lines, 3.00 on shipping = 16.12; total 96.72.
    assert await page.get_by_test_id("subtotal").inner_text() == "€82.00"
    assert await page.get_by_test_id("discount").inner_text() == "\u2212€16.40"
    assert await page.get_by_test_id("shipping").inner_text() == "€15.00"
    assert await page.get_by_test_id("tax").inner_text() == "€16.12"
    assert await page.get_by_test_id("total-due").inner_text() == "€96.72"
    assert await overflow(page) <= 0
    await page.screenshot(path=str(artifacts_dir / "sandbox-cart.png"), full_page=True)
    await fill_card(page, "4242 4242 4242 4242")
    await page.get_by_role("button", name="Pay €96.72").click()
    await page.wait_for_url(f"**/success?session_id={session.id}")
    paid = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert (paid.payment_status, paid.amount_total) == ("paid", 9672)
    assert paid.collected_information is not None
    shipping = paid.collected_information.shipping_details
    assert shipping is not None and shipping.address.city == "Paris"
    assert paid.total_details is not None and paid.total_details.amount_tax == 1612
    # Back after paying shows the closed page, not the filled form.
    await page.go_back()
    await page.wait_for_url(f"**/c/pay/{session.id}")
    heading = page.get_by_role("heading", level=1)
    assert await heading.inner_text() == "This checkout session is already paid"


async def test_an_unknown_code_is_refused_on_the_page(sandbox: Sandbox, page: Any) -> None:
    session = await cart_session(sandbox)
    await page.goto(session.url)
    await page.get_by_label("Promotion code").fill("NOT-A-CODE")
    await page.get_by_role("button", name="Apply").click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert await alert.inner_text() == "This code is invalid."
    assert await page.get_by_test_id("total-due").inner_text() == "€87.00"


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two ``rgb(r, g, b)`` colours."""

    def luminance(colour: str) -> float:
        channels = [int(part) / 255 for part in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


async def test_declined_text_has_enough_contrast_and_the_banner_a_landmark(
    sandbox: Sandbox, page: Any
) -> None:
    session = await cart_session(sandbox)
    await page.goto(session.url)
    await page.get_by_label("Full name").fill("Ada Shopper")
    await page.get_by_label("Address line 1").fill("Hauptstraße 1")
    await page.get_by_label("Postal code").fill("10115")
    await page.get_by_label("City").fill("Berlin")
    await page.get_by_label("Country").select_option("DE")
    await page.get_by_role("button", name="Save address and update total").click()
    await fill_card(page, "4000 0000 0000 0002")
    await page.get_by_role("button", name=re.compile("^Pay €")).click()
    alert = page.locator("#card-error")
    await alert.wait_for()
    colours = await alert.evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
    )
    assert contrast(*colours) >= 4.5, colours
    banner = page.get_by_role("banner")
    assert "Test mode" in await banner.inner_text()
