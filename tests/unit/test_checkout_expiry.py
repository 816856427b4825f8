"""The checkout session's lifetime: its setting, and the expires_at sent to Stripe."""

from __future__ import annotations

import pytest

from storefront.checkout import session_expires_at
from storefront.config import ConfigError, Settings
from storefront.payments import longest_call

BASE = {"STRIPE_WEBHOOK_SECRET": "whsec_testsecret0123456789"}


def test_the_default_lifetime_is_an_hour() -> None:
    assert Settings.from_env(BASE).checkout_expires_after == 3600


@pytest.mark.parametrize("value", ["1800", "7200", "86400"])
def test_lifetimes_stripe_accepts_are_taken(value: str) -> None:
    settings = Settings.from_env(BASE | {"STOREFRONT_CHECKOUT_EXPIRES_AFTER": value})
    assert settings.checkout_expires_after == int(value)


@pytest.mark.parametrize("value", ["900", "1799", "86401", "1h", "3600.5", "-1"])
def test_lifetimes_stripe_refuses_stop_the_shop_with_one_line(value: str) -> None:
    with pytest.raises(ConfigError, match="STOREFRONT_CHECKOUT_EXPIRES_AFTER") as raised:
        Settings.from_env(BASE | {"STOREFRONT_CHECKOUT_EXPIRES_AFTER": value})
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("lifetime", "sent"),
    [(3600, 3600), (7200, 7200), (1800, 1860), (86400, 86340)],
)
def test_expires_at_stays_a_minute_inside_stripes_limits(lifetime: int, sent: int) -> None:
    assert session_expires_at(1_000_000.7, lifetime) == 1_000_000 + sent


def test_a_checkout_call_is_bounded_by_every_retry_and_backoff() -> None:
    # 30 s per attempt, 5 s at most between attempts, a minute of margin.
    assert longest_call(0) == 30 + 60
    assert longest_call(2) == 3 * 30 + 2 * 5 + 60
    assert longest_call(10) > longest_call(2)
