"""Checkout Sessions: validate create parameters the way Stripe does, then build the session.

Parsing ends in a ``SessionRequest``; the object itself lives in ``resources.session``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import validation
from .errors import invalid, missing_param, unknown_param
from .objects import list_object
from .resources import AppliedDiscount, CheckoutSession, LineItem

if TYPE_CHECKING:
    from .catalog import Catalog
    from .commerce import CommerceTerms

MIN_EXPIRY = 30 * 60
MAX_EXPIRY = 24 * 60 * 60
# Client and sandbox clocks differ a little; Stripe is lenient by a few seconds too.
EXPIRY_SLACK = 10
PAYMENT_METHOD_TYPES = ("card", "sepa_debit")

CREATE_PARAMS = {
    "mode",
    "line_items",
    "success_url",
    "cancel_url",
    "client_reference_id",
    "metadata",
    "customer_email",
    "expires_at",
    "allowed_payment_method_types",
    "excluded_payment_method_types",
    "payment_intent_data",
    "expand",
    "locale",
    "ui_mode",
    # Shipping, discounts and tax: checked in commerce.py.
    "shipping_address_collection",
    "shipping_options",
    "allow_promotion_codes",
    "discounts",
    "automatic_tax",
}
LINE_ITEM_PARAMS = {"price", "price_data", "quantity"}
PRICE_DATA_PARAMS = {"currency", "unit_amount", "product_data", "tax_behavior"}
PRODUCT_DATA_PARAMS = {"name", "description", "images", "metadata"}
PAYMENT_INTENT_DATA_PARAMS = {"metadata", "description"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_known(params: dict[str, Any], allowed: set[str], prefix: str = "") -> None:
    """Reject the first parameter Stripe would not know."""
    for key in params:
        if key not in allowed:
            raise unknown_param(f"{prefix}[{key}]" if prefix else key)


def as_dict(value: Any, param: str) -> dict[str, Any]:
    """A hash parameter, or 400."""
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param} must be a hash", param)
    return value


def as_list(value: Any, param: str) -> list[Any]:
    """An array parameter, or 400."""
    if not isinstance(value, list):
        raise invalid(f"Invalid array: {param} must be an array", param)
    return value


def as_int(value: Any, param: str, minimum: int | None = None) -> int:
    """An integer parameter, or 400."""
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid(f"Invalid integer: {value}", param)
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid(
            f"This value must be greater than or equal to {minimum}.",
            param,
            "parameter_invalid_integer",
        )
    return number


def as_str(value: Any, param: str) -> str:
    """A string parameter, or 400."""
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {param} must be a string", param)
    return value


def check_metadata(value: Any, param: str) -> dict[str, str]:
    """Stripe's metadata limits: 50 keys, 40-character keys, 500-character values."""
    metadata = as_dict(value, param)
    if len(metadata) > 50:
        raise invalid("You can have at most 50 metadata keys.", param)
    for key, item in metadata.items():
        if not isinstance(item, str):
            raise invalid(f"Invalid metadata value for {key}", f"{param}[{key}]")
        if len(key) > 40:
            raise invalid("Metadata keys must be at most 40 characters.", f"{param}[{key}]")
        if len(item) > 500:
            raise invalid("Metadata values must be at most 500 characters.", f"{param}[{key}]")
    # An empty value unsets a key in Stripe; on create it simply is not stored.
    return {key: item for key, item in metadata.items() if item != ""}


def check_url(value: Any, param: str) -> str:
    """An absolute http(s) URL, or 400 'Not a valid URL'."""
    return validation.check_url(value, param)


def parse_line_item(
    raw: Any, index: int, created: int, catalog: Catalog | None = None
) -> LineItem:
    """Validate one ``line_items[n]`` (``price`` or ``price_data``); return its line."""
    param = f"line_items[{index}]"
    item = as_dict(raw, param)
    check_known(item, LINE_ITEM_PARAMS, param)
    if "price" in item and "price_data" in item:
        raise invalid(
            f"You may only specify one of these parameters: {param}[price], {param}[price_data].",
            f"{param}[price]",
        )
    if "price" not in item and "price_data" not in item:
        raise missing_param(f"{param}[price_data]")
    if "quantity" not in item:
        raise missing_param(f"{param}[quantity]")
    quantity = as_int(item["quantity"], f"{param}[quantity]", minimum=1)
    if "price" in item:
        return saved_price_line(item["price"], f"{param}[price]", quantity, created, catalog)
    param = f"{param}[price_data]"
    price = as_dict(item["price_data"], param)
    check_known(price, PRICE_DATA_PARAMS, param)
    for required in ("currency", "unit_amount", "product_data"):
        if required not in price:
            raise missing_param(f"{param}[{required}]")
    currency = as_str(price["currency"], f"{param}[currency]").lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise invalid(f"Invalid currency: {currency}", f"{param}[currency]")
    unit_amount = as_int(price["unit_amount"], f"{param}[unit_amount]", minimum=0)
    product = as_dict(price["product_data"], f"{param}[product_data]")
    check_known(product, PRODUCT_DATA_PARAMS, f"{param}[product_data]")
    if not product.get("name"):
        raise missing_param(f"{param}[product_data][name]")
    images = as_list(product.get("images", []), f"{param}[product_data][images]")
    tax_behavior = price.get("tax_behavior", "unspecified")
    if tax_behavior not in ("exclusive", "inclusive", "unspecified"):
        raise invalid(
            "Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified",
            f"{param}[tax_behavior]",
        )
    return LineItem(
        name=as_str(product["name"], f"{param}[product_data][name]"),
        description=product.get("description"),
        images=tuple(str(image) for image in images),
        currency=currency,
        unit_amount=unit_amount,
        quantity=quantity,
        created=created,
        tax_behavior=tax_behavior,
    )


def saved_price_line(
    raw: Any, param: str, quantity: int, created: int, catalog: Catalog | None
) -> LineItem:
    """A line bought at a saved, active price of a saved product."""
    price_id = as_str(raw, param)
    if catalog is None:
        raise invalid(f"No such price: '{price_id}'", param)
    price = catalog.get("price", price_id, param)
    if not price.active:
        raise invalid(
            "The price specified is inactive. This field only accepts active prices.", param
        )
    product = catalog.get("product", price.product, param)
    return LineItem(
        name=product.name,
        description=product.description,
        images=product.images,
        currency=price.currency,
        unit_amount=price.unit_amount,
        quantity=quantity,
        created=created,
        tax_behavior=price.tax_behavior,
        price_id=price.id,
        product_id=product.id,
        saved_price=price.to_stripe(),
    )


@dataclass(frozen=True)
class SessionRequest:
    """The parameters of ``POST /v1/checkout/sessions``, validated."""

    lines: tuple[LineItem, ...]
    success_url: str
    cancel_url: str | None
    methods: list[str]
    allowed: list[str] | None
    excluded: list[str] | None
    expires_at: int
    customer_email: str | None
    client_reference_id: str | None
    locale: str | None
    metadata: dict[str, str]
    pi_metadata: dict[str, str]
    pi_description: str | None
    terms: CommerceTerms | None = field(default=None)

    @property
    def currency(self) -> str:
        """The one currency all lines share."""
        return self.lines[0].currency

    @property
    def amount_total(self) -> int:
        """What the session charges: the sum of its lines."""
        return sum(line.amount for line in self.lines)


def parse_session_params(
    params: dict[str, Any], now: int, catalog: Catalog | None = None
) -> SessionRequest:
    """Validate ``POST /v1/checkout/sessions`` as Stripe does; 400 naming the bad param."""
    # commerce.py builds on this module's helpers, so it is imported when first needed.
    from .catalog import Catalog
    from .commerce import parse_commerce

    check_known(params, CREATE_PARAMS)
    validation.check_session_params(params)
    for required in ("mode", "line_items", "success_url"):
        if required not in params:
            raise missing_param(required)
    if params["mode"] != "payment":
        raise invalid("The sandbox supports mode=payment only (one-time purchases).", "mode")
    catalog = catalog if catalog is not None else Catalog()
    lines = _parse_lines(params["line_items"], now, catalog)
    allowed = _method_list(params, "allowed_payment_method_types")
    excluded = _method_list(params, "excluded_payment_method_types")
    _check_ui_mode(params.get("ui_mode", "hosted_page"))
    pi_data = as_dict(params.get("payment_intent_data", {}), "payment_intent_data")
    check_known(pi_data, PAYMENT_INTENT_DATA_PARAMS, "payment_intent_data")
    request = SessionRequest(
        lines=lines,
        success_url=check_url(params["success_url"], "success_url"),
        cancel_url=check_url(params["cancel_url"], "cancel_url")
        if "cancel_url" in params
        else None,
        methods=_offered_methods(lines[0].currency, allowed, excluded),
        allowed=allowed,
        excluded=excluded,
        expires_at=_parse_expires_at(params, now),
        customer_email=_parse_email(params.get("customer_email")),
        client_reference_id=_parse_reference(params.get("client_reference_id")),
        locale=params.get("locale") or None,
        metadata=check_metadata(params.get("metadata", {}), "metadata"),
        pi_metadata=check_metadata(pi_data.get("metadata", {}), "payment_intent_data[metadata]"),
        pi_description=pi_data.get("description"),
        terms=parse_commerce(params, lines[0].currency, now, catalog),
    )
    # The total is known only once every line is valid.
    validation.check_minimum_amount(request.amount_total, request.currency)
    return request


def _parse_lines(raw: Any, now: int, catalog: Catalog) -> tuple[LineItem, ...]:
    lines = tuple(
        parse_line_item(item, index, now, catalog)
        for index, item in enumerate(as_list(raw, "line_items"))
    )
    if not lines:
        raise missing_param("line_items")
    if len({line.currency for line in lines}) > 1:
        raise invalid("All line_items must use the same currency.", "line_items")
    return lines


def _offered_methods(
    currency: str, allowed: list[str] | None, excluded: list[str] | None
) -> list[str]:
    """What the session offers: the account's methods, filtered by allowed and excluded."""
    # Stripe offers the methods the Dashboard enables that suit the session; the
    # sandbox acts as an account with cards and SEPA Direct Debit on (SEPA for eur).
    # payment_method_types is gone since 2026-10-28.endive.
    eligible = ["card", "sepa_debit"] if currency == "eur" else ["card"]
    methods = [
        m for m in eligible if (allowed is None or m in allowed) and m not in (excluded or [])
    ]
    if not methods:
        raise invalid(
            "No valid payment method types for this Checkout Session. Check the currency "
            "and the allowed and excluded payment method types.",
            "allowed_payment_method_types" if allowed is not None else "line_items",
        )
    return methods


def _check_ui_mode(ui_mode: Any) -> None:
    if ui_mode != "hosted_page":
        raise invalid(
            f"Invalid ui_mode: the sandbox hosts only hosted_page sessions, got {ui_mode!r}.",
            "ui_mode",
        )


def _parse_expires_at(params: dict[str, Any], now: int) -> int:
    if "expires_at" not in params:
        return now + MAX_EXPIRY
    expires_at = as_int(params["expires_at"], "expires_at")
    if expires_at < now + MIN_EXPIRY - EXPIRY_SLACK:
        raise invalid(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout "
            "Session creation.",
            "expires_at",
        )
    if expires_at > now + MAX_EXPIRY + EXPIRY_SLACK:
        raise invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout "
            "Session creation.",
            "expires_at",
        )
    return expires_at


def _parse_email(raw: Any) -> str | None:
    if not raw:
        return None
    email = as_str(raw, "customer_email")
    if not _EMAIL.match(email):
        raise invalid(f"Invalid email address: {email}", "customer_email", "email_invalid")
    return email


def _parse_reference(raw: Any) -> str | None:
    if not raw:
        return None
    reference = as_str(raw, "client_reference_id")
    if len(reference) > 200:
        raise invalid("client_reference_id must be at most 200 characters.", "client_reference_id")
    return reference


def _method_list(params: dict[str, Any], name: str) -> list[str] | None:
    """An allowed/excluded payment method list: known methods only, or 400."""
    if name not in params:
        return None
    methods = [
        as_str(method, f"{name}[{index}]")
        for index, method in enumerate(as_list(params[name], name))
    ]
    for index, method in enumerate(methods):
        if method not in PAYMENT_METHOD_TYPES:
            raise invalid(
                f"Invalid {name}[{index}]: must be one of " + ", ".join(PAYMENT_METHOD_TYPES),
                f"{name}[{index}]",
            )
    return methods


def new_session(request: SessionRequest, now: int, public_base: str) -> CheckoutSession:
    """An open session built from validated parameters."""
    record = CheckoutSession(
        created=now,
        expires_at=request.expires_at,
        currency=request.currency,
        line_items=request.lines,
        success_url=request.success_url,
        cancel_url=request.cancel_url,
        client_reference_id=request.client_reference_id,
        customer_email=request.customer_email,
        locale=request.locale,
        metadata=request.metadata,
        payment_method_types=request.methods,
        allowed_payment_method_types=request.allowed,
        excluded_payment_method_types=request.excluded,
        payment_intent_metadata=request.pi_metadata,
        payment_intent_description=request.pi_description,
        public_base=public_base,
    )
    if request.terms is not None:
        record.terms = request.terms
        if request.terms.coupon is not None:
            record.discount = AppliedDiscount(
                request.terms.coupon, request.terms.promotion_code, record.id, now
            )
    return record


def build_session(
    params: dict[str, Any], now: int, public_base: str, catalog: Catalog | None = None
) -> CheckoutSession:
    """Validate ``POST /v1/checkout/sessions`` parameters and build an open session."""
    return new_session(parse_session_params(params, now, catalog), now, public_base)


def public_line_items(
    record: CheckoutSession, url: str, include: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The session's line items as a Stripe list (kept for the API's line_items route)."""
    return list_object(url, record.line_items_list(include)["data"])
