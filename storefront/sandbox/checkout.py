"""Checkout Sessions: validate create parameters the way Stripe does and build the object."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import validation
from .errors import invalid, missing_param, unknown_param
from .objects import list_object, new_id

MIN_EXPIRY = 30 * 60
MAX_EXPIRY = 24 * 60 * 60
# Client and sandbox clocks differ a little; Stripe is lenient by a few seconds too.
EXPIRY_SLACK = 10
PAYMENT_METHOD_TYPES = ("card", "sepa_debit")
DELAYED_METHODS = ("sepa_debit",)

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
}
LINE_ITEM_PARAMS = {"price_data", "quantity"}
PRICE_DATA_PARAMS = {"currency", "unit_amount", "product_data"}
PRODUCT_DATA_PARAMS = {"name", "description", "images", "metadata"}
PAYMENT_INTENT_DATA_PARAMS = {"metadata", "description"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class SessionRecord:
    """A Checkout Session plus what the sandbox keeps beside the public object."""

    obj: dict[str, Any]
    line_items: list[dict[str, Any]]
    payment_intent_metadata: dict[str, str]
    payment_intent_description: str | None = None
    # Card details waiting for the authentication step (4000 0025 0000 3155).
    pending_auth: dict[str, str] | None = None
    charge: dict[str, Any] | None = None
    method_type: str | None = None
    # Bank debits only: processing, then succeeded or failed.
    settlement: str | None = None
    refunds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.obj["id"]


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


def parse_line_item(raw: Any, index: int) -> dict[str, Any]:
    """Validate one ``line_items[n]`` with ``price_data``; return the internal line."""
    param = f"line_items[{index}]"
    item = as_dict(raw, param)
    if "price" in item:
        raise invalid(
            "The sandbox supports line_items with price_data only, not saved prices.",
            f"{param}[price]",
        )
    check_known(item, LINE_ITEM_PARAMS, param)
    if "price_data" not in item:
        raise missing_param(f"{param}[price_data]")
    if "quantity" not in item:
        raise missing_param(f"{param}[quantity]")
    quantity = as_int(item["quantity"], f"{param}[quantity]", minimum=1)
    price = as_dict(item["price_data"], f"{param}[price_data]")
    check_known(price, PRICE_DATA_PARAMS, f"{param}[price_data]")
    for required in ("currency", "unit_amount", "product_data"):
        if required not in price:
            raise missing_param(f"{param}[price_data][{required}]")
    currency = as_str(price["currency"], f"{param}[price_data][currency]").lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise invalid(f"Invalid currency: {currency}", f"{param}[price_data][currency]")
    unit_amount = as_int(price["unit_amount"], f"{param}[price_data][unit_amount]", minimum=0)
    product = as_dict(price["product_data"], f"{param}[price_data][product_data]")
    check_known(product, PRODUCT_DATA_PARAMS, f"{param}[price_data][product_data]")
    if not product.get("name"):
        raise missing_param(f"{param}[price_data][product_data][name]")
    images = as_list(product.get("images", []), f"{param}[price_data][product_data][images]")
    return {
        "name": as_str(product["name"], f"{param}[price_data][product_data][name]"),
        "description": product.get("description"),
        "images": [str(image) for image in images],
        "currency": currency,
        "unit_amount": unit_amount,
        "quantity": quantity,
    }


def line_item_object(line: dict[str, Any], created: int) -> dict[str, Any]:
    """Stripe's ``item`` object for one line."""
    amount = line["unit_amount"] * line["quantity"]
    return {
        "id": new_id("li_"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": line["currency"],
        "description": line["name"],
        "price": {
            "id": new_id("price_"),
            "object": "price",
            "active": False,
            "created": created,
            "currency": line["currency"],
            "livemode": False,
            "metadata": {},
            "product": new_id("prod_"),
            "type": "one_time",
            "unit_amount": line["unit_amount"],
            "unit_amount_decimal": str(line["unit_amount"]),
        },
        "quantity": line["quantity"],
    }


def build_session(params: dict[str, Any], now: int, public_base: str) -> SessionRecord:
    """Validate ``POST /v1/checkout/sessions`` parameters and build an open session."""
    check_known(params, CREATE_PARAMS)
    validation.check_session_params(params)
    if "mode" not in params:
        raise missing_param("mode")
    if params["mode"] != "payment":
        raise invalid("The sandbox supports mode=payment only (one-time purchases).", "mode")
    if "line_items" not in params:
        raise missing_param("line_items")
    if "success_url" not in params:
        raise missing_param("success_url")
    lines = [
        parse_line_item(raw, index)
        for index, raw in enumerate(as_list(params["line_items"], "line_items"))
    ]
    if not lines:
        raise missing_param("line_items")
    currencies = {line["currency"] for line in lines}
    if len(currencies) > 1:
        raise invalid("All line_items must use the same currency.", "line_items")
    currency = lines[0]["currency"]
    success_url = check_url(params["success_url"], "success_url")
    cancel_url = check_url(params["cancel_url"], "cancel_url") if "cancel_url" in params else None

    # Stripe offers the methods the Dashboard enables that suit the session; the
    # sandbox acts as an account with cards and SEPA Direct Debit on (SEPA for eur).
    # allowed_payment_method_types filters that set, excluded_payment_method_types
    # removes from it; payment_method_types is gone since 2026-10-28.endive.
    eligible = ["card", "sepa_debit"] if currency == "eur" else ["card"]
    allowed = _method_list(params, "allowed_payment_method_types")
    excluded = _method_list(params, "excluded_payment_method_types")
    methods = [
        m for m in eligible if (allowed is None or m in allowed) and m not in (excluded or [])
    ]
    if not methods:
        raise invalid(
            "No valid payment method types for this Checkout Session. Check the currency "
            "and the allowed and excluded payment method types.",
            "allowed_payment_method_types" if allowed is not None else "line_items",
        )
    ui_mode = params.get("ui_mode", "hosted_page")
    if ui_mode != "hosted_page":
        raise invalid(
            f"Invalid ui_mode: the sandbox hosts only hosted_page sessions, got {ui_mode!r}.",
            "ui_mode",
        )

    if "expires_at" in params:
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
    else:
        expires_at = now + MAX_EXPIRY

    customer_email = None
    if params.get("customer_email"):
        customer_email = as_str(params["customer_email"], "customer_email")
        if not _EMAIL.match(customer_email):
            raise invalid(
                f"Invalid email address: {customer_email}", "customer_email", "email_invalid"
            )
    client_reference_id = params.get("client_reference_id") or None
    if client_reference_id is not None:
        as_str(client_reference_id, "client_reference_id")
        if len(client_reference_id) > 200:
            raise invalid(
                "client_reference_id must be at most 200 characters.", "client_reference_id"
            )
    metadata = check_metadata(params.get("metadata", {}), "metadata")
    pi_data = as_dict(params.get("payment_intent_data", {}), "payment_intent_data")
    check_known(pi_data, PAYMENT_INTENT_DATA_PARAMS, "payment_intent_data")
    pi_metadata = check_metadata(pi_data.get("metadata", {}), "payment_intent_data[metadata]")

    amount = sum(line["unit_amount"] * line["quantity"] for line in lines)
    validation.check_minimum_amount(amount, currency)
    session_id = new_id("cs_test_", 58)
    obj: dict[str, Any] = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "created": now,
        "currency": currency,
        "customer": None,
        "customer_details": None,
        "customer_email": customer_email,
        "expires_at": expires_at,
        "livemode": False,
        "locale": params.get("locale") or None,
        "metadata": metadata,
        "mode": "payment",
        "payment_intent": None,
        "allowed_payment_method_types": allowed,
        "excluded_payment_method_types": excluded,
        "payment_method_types": methods,
        "payment_status": "unpaid" if amount > 0 else "no_payment_required",
        "status": "open",
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": f"{public_base}/c/pay/{session_id}",
    }
    return SessionRecord(
        obj=obj,
        line_items=[line_item_object(line, now) | {"_line": line} for line in lines],
        payment_intent_metadata=pi_metadata,
        payment_intent_description=pi_data.get("description"),
    )


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


def public_line_items(record: SessionRecord, url: str) -> dict[str, Any]:
    """The session's line items as a Stripe list, without internal fields."""
    data = [{k: v for k, v in item.items() if not k.startswith("_")} for item in record.line_items]
    return list_object(url, data)
