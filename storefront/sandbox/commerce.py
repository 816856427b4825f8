"""Session create parameters for shipping, discounts and tax, validated as Stripe does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .checkout import as_dict, as_list, as_str, check_known
from .errors import invalid, missing_param
from .listing import parse_bool
from .resources.coupon import Coupon
from .resources.promotion_code import PromotionCode
from .resources.terms import CommerceTerms

if TYPE_CHECKING:
    from .catalog import Catalog

COMMERCE_PARAMS = {
    "shipping_address_collection",
    "shipping_options",
    "allow_promotion_codes",
    "discounts",
    "automatic_tax",
}
MAX_SHIPPING_OPTIONS = 5
CODE_INVALID = "This code is invalid."
CODE_NOT_APPLICABLE = "This code is not valid for this purchase."


def parse_commerce(
    params: dict[str, Any], currency: str, now: int, catalog: Catalog
) -> CommerceTerms:
    """Validate the shipping, discount and tax parameters of a session create call."""
    from .catalog import parse_shipping_rate  # the catalog imports checkout, as this does

    countries = None
    if "shipping_address_collection" in params:
        countries = _countries(params["shipping_address_collection"])
    options = []
    raw_options = as_list(params.get("shipping_options", []), "shipping_options")
    if len(raw_options) > MAX_SHIPPING_OPTIONS:
        raise invalid("You can pass at most 5 shipping_options.", "shipping_options")
    for index, raw in enumerate(raw_options):
        param = f"shipping_options[{index}]"
        option = as_dict(raw, param)
        check_known(option, {"shipping_rate", "shipping_rate_data"}, param)
        if ("shipping_rate" in option) == ("shipping_rate_data" in option):
            raise invalid(
                f"You must pass exactly one of {param}[shipping_rate] or "
                f"{param}[shipping_rate_data].",
                param,
            )
        if "shipping_rate" in option:
            rate_id = as_str(option["shipping_rate"], f"{param}[shipping_rate]")
            rate = catalog.get("shipping_rate", rate_id, f"{param}[shipping_rate]")
            if not rate.active:
                raise invalid(f"The shipping rate {rate_id} is not active.", param)
        else:
            data = as_dict(option["shipping_rate_data"], f"{param}[shipping_rate_data]")
            rate = parse_shipping_rate(data, now, f"{param}[shipping_rate_data]")
        if rate.currency != currency:
            raise invalid(
                f"The currency of {param} ({rate.currency}) must match the currency of the "
                f"Checkout Session ({currency}).",
                param,
            )
        options.append(rate)
    allow = None
    if "allow_promotion_codes" in params:
        allow = parse_bool(params["allow_promotion_codes"], "allow_promotion_codes")
    if "discounts" in params and allow is not None:
        raise invalid(
            "You may only specify one of these parameters: allow_promotion_codes, discounts.",
            "discounts",
        )
    coupon, promo = _discount(params, currency, now, catalog)
    return CommerceTerms(
        shipping_countries=countries,
        shipping_options=tuple(options),
        automatic_tax=_automatic_tax(params.get("automatic_tax")),
        allow_promotion_codes=allow,
        coupon=coupon,
        promotion_code=promo,
    )


def _countries(raw: Any) -> tuple[str, ...]:
    collection = as_dict(raw, "shipping_address_collection")
    check_known(collection, {"allowed_countries"}, "shipping_address_collection")
    param = "shipping_address_collection[allowed_countries]"
    if "allowed_countries" not in collection:
        raise missing_param(param)
    countries = [
        as_str(c, f"{param}[{n}]")
        for n, c in enumerate(as_list(collection["allowed_countries"], param))
    ]
    if not countries:
        raise missing_param(param)
    for index, country in enumerate(countries):
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise invalid(
                f"Invalid {param}[{index}]: must be a two-letter ISO country code",
                f"{param}[{index}]",
            )
    return tuple(dict.fromkeys(countries))


def _automatic_tax(raw: Any) -> bool:
    if raw is None:
        return False
    settings = as_dict(raw, "automatic_tax")
    check_known(settings, {"enabled"}, "automatic_tax")
    if "enabled" not in settings:
        raise missing_param("automatic_tax[enabled]")
    return parse_bool(settings["enabled"], "automatic_tax[enabled]")


def _discount(
    params: dict[str, Any], currency: str, now: int, catalog: Catalog
) -> tuple[Coupon | None, PromotionCode | None]:
    if "discounts" not in params:
        return None, None
    entries = as_list(params["discounts"], "discounts")
    if len(entries) > 1:
        raise invalid("You may only apply one discount to a Checkout Session.", "discounts")
    if not entries:
        return None, None
    entry = as_dict(entries[0], "discounts[0]")
    check_known(entry, {"coupon", "promotion_code"}, "discounts[0]")
    if ("coupon" in entry) == ("promotion_code" in entry):
        raise invalid(
            "You must pass exactly one of discounts[0][coupon] or discounts[0][promotion_code].",
            "discounts[0]",
        )
    promo = None
    if "promotion_code" in entry:
        param = "discounts[0][promotion_code]"
        promo = catalog.get("promotion_code", as_str(entry["promotion_code"], param), param)
        if not promo.usable(now):
            raise invalid(f"This promotion code cannot be redeemed: {promo.code}", param)
        coupon = promo.coupon
    else:
        param = "discounts[0][coupon]"
        coupon = catalog.get("coupon", as_str(entry["coupon"], param), param)
        if not coupon.valid(now):
            raise invalid(f"This coupon cannot be redeemed: {coupon.id}", param)
    if not coupon.applies_to(currency):
        raise invalid(
            f"The coupon's currency ({coupon.currency}) does not match the currency of the "
            f"Checkout Session ({currency}).",
            param,
        )
    return coupon, promo


def check_code(text: str, currency: str, now: int, catalog: Catalog) -> PromotionCode | str:
    """A code typed on the payment page: the promotion code, or the message the page shows."""
    promo = catalog.code(text.strip())
    if promo is None or not promo.usable(now):
        return CODE_INVALID
    if not promo.coupon.applies_to(currency):
        return CODE_NOT_APPLICABLE
    return promo
