"""Money formatting and price parsing."""

from __future__ import annotations

import pytest

from storefront.money import format_money, format_timestamp, normalise_currency, parse_price


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1999, "eur", "€19.99"),
        (1800, "usd", "$18.00"),
        (5, "gbp", "£0.05"),
        (123456789, "usd", "$1,234,567.89"),
        (500, "jpy", "¥500"),
        (1000, "sek", "10.00 SEK"),
        (1000, "krw", "1,000 KRW"),
    ],
)
def test_format_money(amount: int, currency: str, text: str) -> None:
    assert format_money(amount, currency) == text


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("19.99", "eur", 1999), ("18", "usd", 1800), (" 0.5 ", "eur", 50), ("500", "jpy", 500)],
)
def test_parse_price(text: str, currency: str, minor: int) -> None:
    assert parse_price(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "complaint"),
    [
        ("abc", "eur", "not a number"),
        ("-1", "eur", "positive"),
        ("0", "eur", "positive"),
        ("1.999", "eur", "decimal places"),
        ("10.5", "jpy", "decimal places"),
        ("NaN", "eur", "positive"),
        ("Infinity", "eur", "positive"),
    ],
)
def test_parse_price_refuses_bad_input(text: str, currency: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_price(text, currency)


def test_normalise_currency() -> None:
    assert normalise_currency(" EUR ") == "eur"
    for bad in ("eu", "euro", "e1r", "€€€"):
        with pytest.raises(ValueError, match="three-letter"):
            normalise_currency(bad)


def test_format_timestamp() -> None:
    assert format_timestamp("2026-11-25T21:16:05.123Z") == "25 November 2026, 21:16 UTC"
    assert format_timestamp("not a time") == "not a time"
