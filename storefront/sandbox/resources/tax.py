"""Automatic tax: the sandbox's small rate table and the ``tax_rate`` objects it applies."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# When the rate objects were "created": fixed, so a rate renders the same every time.
RATES_CREATED = 1767225600


@dataclass(frozen=True)
class CountryRate:
    """One country's standard rate as the sandbox applies it to every product."""

    country: str
    percentage: Fraction
    display_name: str
    tax_type: str


# Standard rates only; no reduced rates, no state or city taxes. A country that is not
# listed (the US among them) is one the account does not collect tax in: 0, no tax lines.
RATE_TABLE: dict[str, CountryRate] = {
    rate.country: rate
    for rate in (
        CountryRate("AT", Fraction(20), "USt.", "vat"),
        CountryRate("BE", Fraction(21), "BTW", "vat"),
        CountryRate("DE", Fraction(19), "MwSt.", "vat"),
        CountryRate("ES", Fraction(21), "IVA", "vat"),
        CountryRate("FR", Fraction(20), "TVA", "vat"),
        CountryRate("GB", Fraction(20), "VAT", "vat"),
        CountryRate("IE", Fraction(23), "VAT", "vat"),
        CountryRate("IT", Fraction(22), "IVA", "vat"),
        CountryRate("NL", Fraction(21), "btw", "vat"),
    )
}


def rate_for(country: str | None) -> CountryRate | None:
    """The rate the sandbox collects for a country, or None where it collects none."""
    return RATE_TABLE.get((country or "").upper())


def tax_rate_object(rate: CountryRate, inclusive: bool) -> dict[str, Any]:
    """The ``tax_rate`` object a line's ``taxes`` and the breakdown name."""
    suffix = "incl" if inclusive else "excl"
    percentage = float(rate.percentage)
    return {
        "id": f"txr_sandbox{rate.country}{suffix}",
        "object": "tax_rate",
        "active": True,
        "country": rate.country,
        "created": RATES_CREATED,
        "description": None,
        "display_name": rate.display_name,
        "effective_percentage": percentage,
        "flat_amount": None,
        "inclusive": inclusive,
        "jurisdiction": rate.country,
        "jurisdiction_level": "country",
        "livemode": False,
        "metadata": {},
        "percentage": percentage,
        "rate_type": "percentage",
        "state": None,
        "tax_type": rate.tax_type,
    }


def tax_entry(rate: CountryRate, inclusive: bool, amount: int, taxable: int) -> dict[str, Any]:
    """One ``taxes[]`` entry: the amount, its rate and what it was computed on."""
    return {
        "amount": amount,
        "rate": tax_rate_object(rate, inclusive),
        "taxability_reason": "standard_rated",
        "taxable_amount": taxable,
    }
