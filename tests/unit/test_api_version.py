"""The shop speaks exactly one Stripe API version: the installed SDK's."""

from __future__ import annotations

import stripe

from storefront.payments import STRIPE_API_VERSION


def test_the_pin_is_the_version_the_sdk_is_generated_for() -> None:
    # Upgrading stripe-python must be a deliberate step: this fails until the pin moves too.
    assert stripe.api_version == STRIPE_API_VERSION
