"""Stripe API versions: which ones the sandbox knows, and the one each request speaks."""

from __future__ import annotations

from .errors import StripeApiError, invalid
from .objects import API_VERSION

# The version stripe-python 16 is generated for; the sandbox's objects have its shape.
PINNED_API_VERSION = API_VERSION

# Released versions Stripe accepts in Stripe-Version, oldest first, up to the pinned
# one. Older dated versions are left out: nobody should start a Checkout shop on them.
KNOWN_API_VERSIONS = (
    "2020-08-27",
    "2022-08-01",
    "2022-11-15",
    "2023-08-16",
    "2023-10-16",
    "2024-04-10",
    "2024-06-20",
    "2024-09-30.acacia",
    "2024-10-28.acacia",
    "2024-11-20.acacia",
    "2024-12-18.acacia",
    "2025-01-27.acacia",
    "2025-02-24.acacia",
    "2025-03-31.basil",
    "2025-04-30.basil",
    "2025-05-28.basil",
    "2025-06-30.basil",
    "2025-07-30.basil",
    "2025-08-27.basil",
    "2025-09-30.clover",
    "2025-10-29.clover",
    "2025-11-17.clover",
    "2025-12-15.clover",
    "2026-01-28.clover",
    "2026-02-25.clover",
    "2026-03-25.dahlia",
    "2026-04-22.dahlia",
    "2026-05-27.dahlia",
    "2026-06-24.dahlia",
    "2026-07-29.dahlia",
    "2026-08-26.dahlia",
    "2026-09-30.endive",
    PINNED_API_VERSION,
)


def invalid_version(version: str) -> StripeApiError:
    """Stripe's 400 for a malformed or unknown ``Stripe-Version``: message and type only."""
    return StripeApiError(400, f"Invalid Stripe API version: {version}")


def resolve_version(header: str | None, account_default: str, strict: bool) -> str:
    """The version a request speaks: its ``Stripe-Version``, else the account default.

    Raises a 400 for a version Stripe does not know and, in strict pinned-version
    mode, for any request that does not end up speaking the pinned version.
    """
    if header is not None:
        version = header.strip()
        if version not in KNOWN_API_VERSIONS:
            raise invalid_version(header)
    else:
        version = account_default
    if strict and version != PINNED_API_VERSION:
        spoken = (
            f"Stripe-Version: {version}"
            if header is not None
            else f"no Stripe-Version header, so the account default {version}"
        )
        raise invalid(
            f"This sandbox runs in strict pinned-version mode and answers only requests "
            f"speaking {PINNED_API_VERSION}; this one sent {spoken}. Send "
            f"'Stripe-Version: {PINNED_API_VERSION}' (stripe-python does when its "
            "client's stripe_version is that version).",
        )
    return version


def echoed_version(header: str | None, account_default: str) -> str:
    """The ``Stripe-Version`` an answer carries: the request's if valid, else the default."""
    if header is not None and header.strip() in KNOWN_API_VERSIONS:
        return header.strip()
    return account_default
