"""The account's saved objects: products, prices, shipping rates, coupons, promotion codes.

Create parameters are validated here as Stripe validates them; the objects live in
``resources/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .checkout import as_dict, as_int, as_list, as_str, check_known, check_metadata
from .errors import invalid, missing_param, no_such
from .listing import parse_bool
from .resources.coupon import Coupon
from .resources.price import Price
from .resources.product import Product
from .resources.promotion_code import PromotionCode, new_code
from .resources.shipping_rate import ShippingRate

TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
ESTIMATE_UNITS = ("business_day", "day", "hour", "month", "week")


@dataclass
class Catalog:
    """Saved objects by id, oldest first; lists answer newest first."""

    products: dict[str, Product] = field(default_factory=dict)
    prices: dict[str, Price] = field(default_factory=dict)
    shipping_rates: dict[str, ShippingRate] = field(default_factory=dict)
    coupons: dict[str, Coupon] = field(default_factory=dict)
    promotion_codes: dict[str, PromotionCode] = field(default_factory=dict)

    def get(self, kind: str, object_id: str, param: str = "id") -> Any:
        """A saved object of one kind (``product``, ``price``, ...), or Stripe's 404."""
        store: dict[str, Any] = getattr(self, _STORES[kind])
        found = store.get(object_id)
        if found is None:
            raise no_such(kind, object_id, param)
        return found

    def code(self, text: str) -> PromotionCode | None:
        """The promotion code a shopper typed (case-insensitive), preferring active ones."""
        matches = [p for p in self.promotion_codes.values() if p.code.lower() == text.lower()]
        matches.sort(key=lambda p: not p.active)
        return matches[0] if matches else None


_STORES = {
    "product": "products",
    "price": "prices",
    "shipping_rate": "shipping_rates",
    "coupon": "coupons",
    "promotion_code": "promotion_codes",
}


def currency_param(value: Any, param: str) -> str:
    """A three-letter currency code, answered lowercase."""
    currency = as_str(value, param).lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise invalid(f"Invalid currency: {currency}", param)
    return currency


def tax_behavior_param(params: dict[str, Any], param: str) -> str:
    """``tax_behavior``: exclusive, inclusive or unspecified (the default)."""
    value = params.get("tax_behavior", "unspecified")
    if value not in TAX_BEHAVIORS:
        raise invalid(
            "Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified",
            f"{param}[tax_behavior]" if param else "tax_behavior",
        )
    return value


def _optional_str(params: dict[str, Any], name: str) -> str | None:
    return as_str(params[name], name) if params.get(name) else None


def parse_product(params: dict[str, Any], now: int) -> tuple[Product, Price | None]:
    """``POST /v1/products``: a product, and its default price from ``default_price_data``."""
    check_known(
        params,
        {"name", "description", "images", "metadata", "active", "shippable", "url"}
        | {"default_price_data", "expand", "id"},
    )
    if not params.get("name"):
        raise missing_param("name")
    images = as_list(params.get("images", []), "images")
    product = Product(
        name=as_str(params["name"], "name"),
        created=now,
        description=_optional_str(params, "description"),
        images=tuple(as_str(i, f"images[{n}]") for n, i in enumerate(images)),
        metadata=check_metadata(params.get("metadata", {}), "metadata"),
        active=parse_bool(params.get("active", "true"), "active"),
        shippable=parse_bool(params["shippable"], "shippable") if "shippable" in params else None,
        url=_optional_str(params, "url"),
    )
    if params.get("id"):
        product.id = as_str(params["id"], "id")
    price = None
    if "default_price_data" in params:
        data = as_dict(params["default_price_data"], "default_price_data")
        check_known(data, {"currency", "unit_amount", "tax_behavior"}, "default_price_data")
        price = _price_from(data, "default_price_data", product.id, now)
        product.default_price = price.id
    return product, price


def _price_from(data: dict[str, Any], param: str, product_id: str, now: int) -> Price:
    for required in ("currency", "unit_amount"):
        if required not in data:
            raise missing_param(f"{param}[{required}]" if param else required)
    prefix = f"{param}[" if param else ""
    suffix = "]" if param else ""
    return Price(
        product=product_id,
        currency=currency_param(data["currency"], f"{prefix}currency{suffix}"),
        unit_amount=as_int(data["unit_amount"], f"{prefix}unit_amount{suffix}", minimum=0),
        created=now,
        tax_behavior=tax_behavior_param(data, param),
    )


def parse_price(params: dict[str, Any], now: int, catalog: Catalog) -> Price:
    """``POST /v1/prices``: a one-time price of a saved product."""
    check_known(
        params,
        {"currency", "unit_amount", "product", "tax_behavior", "active", "nickname"}
        | {"lookup_key", "metadata", "expand"},
    )
    if "recurring" in params:
        raise invalid("The sandbox supports one-time prices only.", "recurring")
    if not params.get("product"):
        raise missing_param("product")
    product = catalog.get("product", as_str(params["product"], "product"), "product")
    price = _price_from(params, "", product.id, now)
    price.active = parse_bool(params.get("active", "true"), "active")
    price.nickname = _optional_str(params, "nickname")
    price.lookup_key = _optional_str(params, "lookup_key")
    price.metadata = check_metadata(params.get("metadata", {}), "metadata")
    return price


def parse_shipping_rate(params: dict[str, Any], now: int, param: str = "") -> ShippingRate:
    """``POST /v1/shipping_rates`` or a session's ``shipping_rate_data``: a fixed amount."""
    known = {"display_name", "type", "fixed_amount", "delivery_estimate", "tax_behavior"}
    check_known(params, known | {"metadata"}, param)

    def name(field_name: str) -> str:
        return f"{param}[{field_name}]" if param else field_name

    if not params.get("display_name"):
        raise missing_param(name("display_name"))
    if params.get("type", "fixed_amount") != "fixed_amount":
        raise invalid("Invalid type: must be fixed_amount", name("type"))
    if "fixed_amount" not in params:
        raise missing_param(name("fixed_amount"))
    fixed = as_dict(params["fixed_amount"], name("fixed_amount"))
    check_known(fixed, {"amount", "currency"}, name("fixed_amount"))
    for required in ("amount", "currency"):
        if required not in fixed:
            raise missing_param(f"{name('fixed_amount')}[{required}]")
    return ShippingRate(
        display_name=as_str(params["display_name"], name("display_name")),
        amount=as_int(fixed["amount"], f"{name('fixed_amount')}[amount]", minimum=0),
        currency=currency_param(fixed["currency"], f"{name('fixed_amount')}[currency]"),
        created=now,
        delivery_estimate=_estimate(params.get("delivery_estimate"), name("delivery_estimate")),
        tax_behavior=tax_behavior_param(params, param),
        metadata=check_metadata(params.get("metadata", {}), name("metadata")),
    )


def _estimate(raw: Any, param: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    estimate = as_dict(raw, param)
    check_known(estimate, {"minimum", "maximum"}, param)
    result: dict[str, Any] = {"maximum": None, "minimum": None}
    for end in ("minimum", "maximum"):
        if end in estimate:
            bound = as_dict(estimate[end], f"{param}[{end}]")
            check_known(bound, {"unit", "value"}, f"{param}[{end}]")
            if bound.get("unit") not in ESTIMATE_UNITS:
                raise invalid(
                    "Invalid unit: must be one of " + ", ".join(ESTIMATE_UNITS),
                    f"{param}[{end}][unit]",
                )
            value = as_int(bound.get("value"), f"{param}[{end}][value]", minimum=1)
            result[end] = {"unit": bound["unit"], "value": value}
    return result


def parse_coupon(params: dict[str, Any], now: int) -> Coupon:
    """``POST /v1/coupons``: exactly one of percent_off and amount_off (with currency)."""
    check_known(
        params,
        {"percent_off", "amount_off", "currency", "duration", "name", "max_redemptions"}
        | {"redeem_by", "metadata", "id", "expand"},
    )
    if ("percent_off" in params) == ("amount_off" in params):
        raise invalid("You must pass exactly one of percent_off or amount_off.", "percent_off")
    duration = params.get("duration", "once")
    if duration not in ("once", "forever"):
        raise invalid(
            "Invalid duration: the sandbox supports once and forever (one-time payments).",
            "duration",
        )
    coupon = Coupon(
        created=now,
        duration=duration,
        name=_optional_str(params, "name"),
        metadata=check_metadata(params.get("metadata", {}), "metadata"),
    )
    if "percent_off" in params:
        raw = as_str(params["percent_off"], "percent_off")
        if not re.fullmatch(r"\d+(\.\d{1,2})?", raw) or not 0 < Fraction(raw) <= 100:
            raise invalid("percent_off must be greater than 0 and at most 100.", "percent_off")
        coupon.percent_off = Fraction(raw)
    else:
        coupon.amount_off = as_int(params["amount_off"], "amount_off", minimum=1)
        if "currency" not in params:
            raise missing_param("currency")
        coupon.currency = currency_param(params["currency"], "currency")
    if "max_redemptions" in params:
        coupon.max_redemptions = as_int(params["max_redemptions"], "max_redemptions", minimum=1)
    if "redeem_by" in params:
        coupon.redeem_by = as_int(params["redeem_by"], "redeem_by")
        if coupon.redeem_by <= now:
            raise invalid("redeem_by must be in the future.", "redeem_by")
    if params.get("id"):
        coupon.id = as_str(params["id"], "id")
    return coupon


def parse_promotion_code(params: dict[str, Any], now: int, catalog: Catalog) -> PromotionCode:
    """``POST /v1/promotion_codes``: ``promotion[type]=coupon``, ``promotion[coupon]``."""
    check_known(
        params,
        {"promotion", "code", "active", "expires_at", "max_redemptions", "metadata", "expand"},
    )
    if "coupon" in params:
        raise invalid("Received unknown parameter: coupon", "coupon", "parameter_unknown")
    if "promotion" not in params:
        raise missing_param("promotion")
    promotion = as_dict(params["promotion"], "promotion")
    check_known(promotion, {"type", "coupon"}, "promotion")
    if promotion.get("type") != "coupon":
        raise invalid("Invalid promotion[type]: must be coupon", "promotion[type]")
    if not promotion.get("coupon"):
        raise missing_param("promotion[coupon]")
    coupon = catalog.get(
        "coupon", as_str(promotion["coupon"], "promotion[coupon]"), "promotion[coupon]"
    )
    code = as_str(params["code"], "code") if params.get("code") else new_code()
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,500}", code):
        raise invalid("Promotion codes may contain letters, digits, - and _ only.", "code")
    taken = catalog.code(code)
    if taken is not None and taken.active:
        raise invalid(f"An active promotion code with `code: {code}` already exists.", "code")
    promo = PromotionCode(code=code, coupon=coupon, created=now)
    promo.active = parse_bool(params.get("active", "true"), "active")
    promo.metadata = check_metadata(params.get("metadata", {}), "metadata")
    if "expires_at" in params:
        promo.expires_at = as_int(params["expires_at"], "expires_at")
    if "max_redemptions" in params:
        promo.max_redemptions = as_int(params["max_redemptions"], "max_redemptions", minimum=1)
    return promo
