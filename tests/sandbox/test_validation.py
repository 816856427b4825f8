"""Stripe's own checks on session create: minimum amounts, locale, currency, URLs."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from storefront.sandbox.validation import LOCALES

from .support import Sandbox, session_params

CURRENCY_PARAM = "line_items[0][price_data][currency]"


def one_line(currency: str, unit_amount: int, quantity: int = 1) -> dict[str, Any]:
    """Session parameters with one line of ``quantity`` times ``unit_amount``."""
    return session_params(
        line_items=[
            {
                "quantity": quantity,
                "price_data": {
                    "currency": currency,
                    "unit_amount": unit_amount,
                    "product_data": {"name": "Sticker"},
                },
            }
        ]
    )


async def refused(sandbox: Sandbox, params: dict[str, Any]) -> stripe.InvalidRequestError:
    """Create a session that must be refused with a 400; return the error."""
    before = len(sandbox.state.sessions)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.checkout.sessions.create_async(params=params)
    assert caught.value.http_status == 400
    assert len(sandbox.state.sessions) == before  # nothing was created
    return caught.value


@pytest.mark.parametrize(
    ("currency", "amount", "shown"),
    [("usd", 10, "$0.50 usd"), ("eur", 49, "€0.50 eur"), ("gbp", 29, "£0.30 gbp")],
)
async def test_a_charge_under_the_currency_minimum_is_refused(
    sandbox: Sandbox, currency: str, amount: int, shown: str
) -> None:
    error = await refused(sandbox, one_line(currency, amount))
    assert error.user_message == (
        f"The Checkout Session's total amount due must add up to at least {shown}"
    )
    assert error.param == "line_items"


@pytest.mark.parametrize(
    ("currency", "unit_amount", "quantity"),
    [("usd", 50, 1), ("gbp", 30, 1), ("usd", 25, 2), ("jpy", 50, 1), ("eur", 0, 1)],
    ids=["usd-minimum", "gbp-minimum", "two-halves", "jpy-minimum", "free"],
)
async def test_charges_at_the_minimum_or_free_are_accepted(
    sandbox: Sandbox, currency: str, unit_amount: int, quantity: int
) -> None:
    session = await sandbox.client.v1.checkout.sessions.create_async(
        params=one_line(currency, unit_amount, quantity)
    )
    assert session.amount_total == unit_amount * quantity


@pytest.mark.parametrize("locale", ["english", "EN", "de-DE", "xx"])
async def test_a_locale_outside_the_pinned_versions_enum_is_refused(
    sandbox: Sandbox, locale: str
) -> None:
    error = await refused(sandbox, session_params(locale=locale))
    assert error.param == "locale"
    assert error.user_message.startswith("Invalid locale: must be one of auto, bg, cs")


@pytest.mark.parametrize("locale", ["auto", "en", "de", "fr-CA", "zh-TW", "es-419"])
async def test_locales_of_the_pinned_version_are_accepted(sandbox: Sandbox, locale: str) -> None:
    assert locale in LOCALES
    session = await sandbox.client.v1.checkout.sessions.create_async(
        params=session_params(locale=locale)
    )
    assert session.locale == locale


@pytest.mark.parametrize("currency", ["xyz", "euro", "eu", "btc"])
async def test_an_unknown_currency_is_refused(sandbox: Sandbox, currency: str) -> None:
    error = await refused(sandbox, one_line(currency, 1000))
    assert error.param == CURRENCY_PARAM
    assert error.user_message.startswith(f"Invalid currency: {currency}.")
    assert "usd, aed" in error.user_message


async def test_currency_codes_are_taken_in_any_case_and_answered_lowercase(
    sandbox: Sandbox,
) -> None:
    session = await sandbox.client.v1.checkout.sessions.create_async(params=one_line("EUR", 1000))
    assert session.currency == "eur"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/success",
        "javascript:alert(1)",
        "https://",
        "https://exa mple.com/",
        "https://example.com/\nnext",
        "//example.com/success",
        "https://example.com:0/",
        "https://example.com:99999/",
        "https://-bad-.example.com/",
        "https://example.com/" + "a" * 5000,
    ],
    ids=[
        "ftp",
        "javascript",
        "no-host",
        "space",
        "newline",
        "relative",
        "port-zero",
        "port-range",
        "bad-host",
        "too-long",
    ],
)
@pytest.mark.parametrize("param", ["success_url", "cancel_url"])
async def test_redirect_urls_are_checked(sandbox: Sandbox, param: str, url: str) -> None:
    error = await refused(sandbox, session_params(**{param: url}))
    assert error.param == param
    assert error.code == "url_invalid"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:5000/orders/abc?session_id={CHECKOUT_SESSION_ID}",
        "https://shop.example.com/thanks",
        "http://127.0.0.1:8000/",
    ],
)
async def test_ordinary_redirect_urls_are_accepted(sandbox: Sandbox, url: str) -> None:
    session = await sandbox.client.v1.checkout.sessions.create_async(
        params=session_params(success_url=url)
    )
    assert session.success_url == url
