"""Stripe's own checks on Checkout Session parameters, beyond their shapes.

Each refusal is the 400 ``invalid_request_error`` Stripe answers, naming the
parameter: the currency and ``locale`` enums of the pinned API version, the
``success_url``/``cancel_url`` checks, and the minimum charge amount per currency
(docs.stripe.com/currencies, "Minimum and maximum charge amounts").
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .errors import invalid


def _words(text: str) -> tuple[str, ...]:
    """A space-separated word list: reads better than a hundred quoted items."""
    return tuple(text.split())


# session create's `locale` in 2026-10-28.endive (stripe-python 16.1's params).
LOCALES = _words(
    "auto bg cs da de el en en-GB es es-419 et fi fil fr fr-CA hi-IN hr hu id it ja ko "
    "lt lv ms mt nb nl pl pt pt-BR ro ru sk sl sv th tr vi zh zh-HK zh-TW"
)

# Stripe's presentment currencies, lowercase as the API wants them.
CURRENCIES = _words(
    "usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl "
    "bsd bwp byn bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd "
    "fkp gbp gel gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs "
    "khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk "
    "mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub "
    "rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs uah "
    "ugx uyu uzs vnd vuv wst xaf xcd xcg xof xpf yer zar zmw"
)

# Minimum charge per settlement currency, in minor units, and as Stripe's message shows it.
# Other currencies must convert to at least 0.50 USD; the sandbox has no rates to check it.
MINIMUM_CHARGES: dict[str, tuple[int, str]] = {
    "usd": (50, "$0.50"),
    "aed": (200, "2.00 AED"),
    "aud": (50, "$0.50"),
    "bgn": (100, "1.00 лв"),
    "brl": (50, "R$0.50"),
    "cad": (50, "$0.50"),
    "chf": (50, "0.50 CHF"),
    "czk": (1500, "15.00 Kč"),
    "dkk": (250, "2.50 kr"),
    "eur": (50, "€0.50"),
    "gbp": (30, "£0.30"),
    "hkd": (400, "$4.00"),
    "huf": (17500, "175.00 Ft"),
    "inr": (50, "₹0.50"),
    "jpy": (50, "¥50"),
    "mxn": (1000, "$10.00"),
    "myr": (200, "RM2.00"),
    "nok": (300, "3.00 kr"),
    "nzd": (50, "$0.50"),
    "pln": (200, "2.00 zł"),
    "ron": (200, "2.00 lei"),
    "sek": (300, "3.00 kr"),
    "sgd": (50, "$0.50"),
    "thb": (1000, "฿10.00"),
}

# Stripe's limit on string parameters such as URLs.
MAX_URL_LENGTH = 5000
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}$")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def one_of(values: list[str] | tuple[str, ...]) -> str:
    """``a, b, or c`` as Stripe's enum errors list the allowed values."""
    return ", ".join(values[:-1]) + f", or {values[-1]}"


def check_url(value: Any, param: str) -> str:
    """An absolute http(s) URL with a valid host, as Stripe accepts for redirects."""
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {param} must be a string", param)
    if len(value) > MAX_URL_LENGTH:
        raise invalid(
            f"Invalid URL: {param} must be at most {MAX_URL_LENGTH} characters.",
            param,
            "url_invalid",
        )
    try:
        parts = urlsplit(value)
        port = parts.port  # a malformed port raises here
    except ValueError:
        raise invalid("Not a valid URL", param, "url_invalid") from None
    host = parts.hostname or ""
    if (
        parts.scheme not in ("http", "https")
        or _SPACE_OR_CONTROL.search(value)
        or not _HOST.match(host)
        or port == 0
    ):
        raise invalid("Not a valid URL", param, "url_invalid")
    return value


def check_currency(value: Any, param: str) -> None:
    """A currency Stripe supports (any case; Stripe answers it lowercase)."""
    if isinstance(value, str) and value.lower() not in CURRENCIES:
        raise invalid(
            f"Invalid currency: {value.lower()}. Stripe currently supports these currencies: "
            + ", ".join(CURRENCIES),
            param,
        )


def check_session_params(params: dict[str, Any]) -> None:
    """The enum and URL checks of ``POST /v1/checkout/sessions``, before the object is built."""
    locale = params.get("locale")
    if locale not in (None, "") and locale not in LOCALES:
        raise invalid(f"Invalid locale: must be one of {one_of(LOCALES)}", "locale")
    for name in ("success_url", "cancel_url"):
        if name in params:
            check_url(params[name], name)
    items = params.get("line_items")
    if isinstance(items, list):
        for index, item in enumerate(items):
            price = item.get("price_data") if isinstance(item, dict) else None
            if isinstance(price, dict) and "currency" in price:
                check_currency(price["currency"], f"line_items[{index}][price_data][currency]")


def check_minimum_amount(amount: int, currency: str) -> None:
    """A session that charges must charge at least the currency's minimum (free is allowed)."""
    minimum = MINIMUM_CHARGES.get(currency)
    if amount > 0 and minimum is not None and amount < minimum[0]:
        raise invalid(
            "The Checkout Session's total amount due must add up to at least "
            f"{minimum[1]} {currency}",
            "line_items",
        )
