"""The shop speaks exactly one Stripe API version: the installed SDK's."""

from __future__ import annotations

import stripe

from storefront.payments import STRIPE_API_VERSION, StripePayments


def test_the_pin_is_the_version_the_sdk_is_generated_for() -> None:
    # Upgrading stripe-python must be a deliberate step: this fails until the pin moves too.
    assert STRIPE_API_VERSION == stripe.api_version


async def test_every_request_carries_the_pinned_version() -> None:
    payments = StripePayments("sk_test_unit0000", "whsec_unit00000000")
    await payments.open()
    try:
        assert payments._client is not None
        assert payments._client.stripe_version == STRIPE_API_VERSION
    finally:
        await payments.close()
