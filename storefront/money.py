"""Money: integer minor units in, text out; parsing prices typed by a shopkeeper."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# Currencies Stripe treats as having no minor unit.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "chf": "CHF ", "cad": "CA$"}


def exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has."""
    return 0 if currency.lower() in ZERO_DECIMAL else 2


def format_money(amount: int, currency: str) -> str:
    """Format minor units for display, e.g. 1999, "eur" → "€19.99"."""
    places = exponent(currency)
    major = Decimal(amount).scaleb(-places)
    number = f"{major:,.{places}f}"
    symbol = SYMBOLS.get(currency.lower())
    if symbol:
        return f"-{symbol}{number[1:]}" if amount < 0 else f"{symbol}{number}"
    return f"{number} {currency.upper()}"


def parse_price(text: str, currency: str) -> int:
    """Turn "19.99" into 1999 minor units; raise ValueError with a clear message."""
    places = exponent(currency)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"price {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"price {text!r} must be a positive amount")
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise ValueError(f"price {text!r} has more than {places} decimal places for {currency}")
    return int(minor)


def normalise_currency(code: str) -> str:
    """Lowercase a three-letter ISO 4217 code; raise ValueError otherwise."""
    code = code.strip().lower()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError(f"currency {code!r} is not a three-letter ISO code")
    return code


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def format_timestamp(value: str) -> str:
    """Show a stored UTC time ("2026-11-25T21:16:05.123Z") as "25 November 2026, 21:16 UTC"."""
    date, _, time = value.partition("T")
    parts = date.split("-")
    if not time or len(parts) != 3 or not all(p.isdigit() for p in parts):
        return value
    year, month, day = (int(p) for p in parts)
    if not 1 <= month <= 12:
        return value
    return f"{day} {_MONTHS[month - 1]} {year}, {time[:5]} UTC"
