"""What every sandbox object shares: Stripe-looking ids, the list envelope, the API version."""

from __future__ import annotations

import secrets
import string
from typing import Any

# The version stripe-python 16 pins; events and objects follow its shapes.
API_VERSION = "2026-10-28.endive"

# The account's one payment method configuration (cards, plus SEPA Direct Debit for eur).
PAYMENT_METHOD_CONFIGURATION_ID = "pmc_sandboxdefault00000000"

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """A random Stripe-looking id such as ``cs_test_a1B2...``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def list_object(url: str, data: list[dict[str, Any]], has_more: bool = False) -> dict[str, Any]:
    """Stripe's list envelope."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def empty_address() -> dict[str, Any]:
    """An ``address`` with nothing collected."""
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


def payment_method_configuration() -> dict[str, Any]:
    """``payment_method_configuration_details``: the pinned version picks methods from it."""
    return {"id": PAYMENT_METHOD_CONFIGURATION_ID, "parent": None}
