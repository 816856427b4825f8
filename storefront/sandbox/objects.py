"""Builders for the JSON objects the sandbox hands out, shaped like Stripe's."""

from __future__ import annotations

import copy
import secrets
import string
from typing import Any

# The version stripe-python 16 pins; events carry it like Stripe's do.
API_VERSION = "2026-10-28.endive"

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """A random Stripe-looking id such as ``cs_test_a1B2...``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def list_object(url: str, data: list[dict[str, Any]], has_more: bool = False) -> dict[str, Any]:
    """Stripe's list envelope."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def event_object(
    event_type: str,
    snapshot: dict[str, Any],
    created: int,
    pending_webhooks: int,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """An ``event`` holding a frozen copy of the object it is about."""
    return {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": copy.deepcopy(snapshot)},
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }


def payment_intent_object(
    pi_id: str,
    amount: int,
    currency: str,
    status: str,
    metadata: dict[str, str],
    created: int,
    method_type: str,
    latest_charge: str | None,
) -> dict[str, Any]:
    """A minimal ``payment_intent`` for ``expand[]=payment_intent``."""
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": currency,
        "created": created,
        "latest_charge": latest_charge,
        "livemode": False,
        "metadata": dict(metadata),
        "payment_method_types": [method_type],
        "status": status,
    }


def charge_object(
    pi_id: str, amount: int, currency: str, metadata: dict[str, str], created: int
) -> dict[str, Any]:
    """A succeeded ``charge`` for a paid payment intent."""
    charge_id = new_id("ch_")
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "captured": True,
        "created": created,
        "currency": currency,
        "livemode": False,
        "metadata": dict(metadata),
        "paid": True,
        "payment_intent": pi_id,
        "refunded": False,
        "refunds": list_object(f"/v1/charges/{charge_id}/refunds", []),
        "status": "succeeded",
    }


def refund_object(
    charge: dict[str, Any], amount: int, created: int, metadata: dict[str, str], reason: str | None
) -> dict[str, Any]:
    """A succeeded ``refund`` of part or all of ``charge``."""
    return {
        "id": new_id("re_"),
        "object": "refund",
        "amount": amount,
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "metadata": dict(metadata),
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "status": "succeeded",
    }
