"""Countries the payment page offers for shipping and tax addresses."""

from __future__ import annotations

from .resources import CheckoutSession

# Names for the country picker; a country missing here shows its code.
COUNTRY_NAMES = {
    "AT": "Austria",
    "BE": "Belgium",
    "CA": "Canada",
    "CH": "Switzerland",
    "DE": "Germany",
    "DK": "Denmark",
    "ES": "Spain",
    "FR": "France",
    "GB": "United Kingdom",
    "IE": "Ireland",
    "IT": "Italy",
    "NL": "Netherlands",
    "PL": "Poland",
    "SE": "Sweden",
    "US": "United States",
}
TAX_COUNTRIES = tuple(sorted(COUNTRY_NAMES))


def country_choices(record: CheckoutSession) -> list[tuple[str, str]]:
    """(code, name) pairs the page offers: the allowed shipping countries, else a short list."""
    codes = record.terms.shipping_countries or TAX_COUNTRIES
    return [(code, COUNTRY_NAMES.get(code, code)) for code in codes]
