"""Variants of the unchanged shop, to measure choices before recommending them.

Each factory builds the shop with ``create_app()`` and swaps one piece from the
outside; none of this ships. Variants that won (the catalog page rendered once a
second, each webhook's transaction in one trip to the writer thread) now live in
the shop itself.
"""

from __future__ import annotations

import stripe
from quart import Quart

from storefront import create_app
from storefront.payments import StripePayments


def httpx_client() -> Quart:
    """The shop with the SDK's httpx client instead of aiohttp."""
    app = create_app()
    gateway = app.extensions["payments"]
    assert isinstance(gateway, StripePayments)

    async def open_httpx() -> None:
        # Same construction as StripePayments.open, with the other async client.
        gateway._http = stripe.HTTPXClient(timeout=30)  # type: ignore[assignment]
        gateway._client = stripe.StripeClient(
            gateway._secret_key,
            base_addresses={"api": gateway._api_base} if gateway._api_base else None,
            http_client=gateway._http,
            max_network_retries=gateway._max_network_retries,
        )

    gateway.open = open_httpx  # type: ignore[method-assign]
    return app
