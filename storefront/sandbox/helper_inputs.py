"""What the complete helper enters for a shopper: an address, a shipping rate, a code."""

from __future__ import annotations

from typing import Any

from .commerce import check_code
from .countries import country_choices
from .errors import invalid
from .resources import AppliedDiscount, CheckoutSession
from .state import SandboxState

INPUT_PARAMS = {"country", "shipping_rate", "promotion_code"}


def enter_inputs(state: SandboxState, record: CheckoutSession, params: dict[str, str]) -> None:
    """Fill in what the hosted page would ask for, with a test address unless told otherwise."""
    countries = [code for code, _ in country_choices(record)]
    country = params.get("country") or countries[0]
    if country not in countries:
        raise invalid(f"This Checkout Session does not ship to {country}.", "country")
    rate = params.get("shipping_rate") or None
    if rate and rate not in [r.id for r in record.terms.shipping_options]:
        raise invalid(f"This Checkout Session does not offer {rate}.", "shipping_rate")
    shipping = record.terms.shipping_countries is not None
    address: dict[str, Any] | None = None
    if shipping or record.terms.automatic_tax or "country" in params:
        address = {
            "city": "Teststadt",
            "country": country,
            "line1": "Teststraße 1",
            "line2": None,
            "postal_code": "10115",
            "state": None,
        }
    discount = None
    if params.get("promotion_code"):
        found = check_code(params["promotion_code"], record.currency, state.now(), state.catalog)
        if not record.terms.allow_promotion_codes:
            found = "This Checkout Session does not take promotion codes."
        if isinstance(found, str):
            raise invalid(found, "promotion_code")
        discount = AppliedDiscount(found.coupon, found, record.id, state.now())
    # Every check passed: only now does the session change.
    record.collect_address(params.get("name") or "Test Shopper", address, rate, shipping)
    if discount is not None:
        record.apply_discount(discount)
