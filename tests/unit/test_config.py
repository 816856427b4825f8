"""Settings from the environment: sensible defaults and one clear line when wrong."""

from __future__ import annotations

import pytest

from storefront.config import SANDBOX_URL, ConfigError, Settings

REAL = {
    "STRIPE_SECRET_KEY": "sk_test_abcdefghijkl",
    "STRIPE_WEBHOOK_SECRET": "whsec_abcdefghijkl",
}


def test_without_a_key_the_shop_runs_against_the_sandbox() -> None:
    settings = Settings.from_env({})
    assert settings.sandbox
    assert settings.api_base == SANDBOX_URL
    assert settings.checkout_origin == SANDBOX_URL
    assert settings.webhook_secret.startswith("whsec_")
    assert settings.base_url == "http://127.0.0.1:5000"
    assert str(settings.database) == "instance/storefront.sqlite3"


def test_sandbox_uses_the_given_webhook_secret() -> None:
    settings = Settings.from_env({"STRIPE_WEBHOOK_SECRET": "whsec_given12345"})
    assert settings.webhook_secret == "whsec_given12345"


def test_real_keys_talk_to_stripe() -> None:
    settings = Settings.from_env(REAL)
    assert not settings.sandbox
    assert settings.api_base is None
    assert settings.checkout_origin == "https://checkout.stripe.com"


def test_secrets_stay_out_of_repr() -> None:
    text = repr(Settings.from_env(REAL))
    assert "abcdefghijkl" not in text


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({**REAL, "STRIPE_SECRET_KEY": "pk_test_abcdefghijkl"}, "STRIPE_SECRET_KEY"),
        ({**REAL, "STRIPE_SECRET_KEY": "sk_test_"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": REAL["STRIPE_SECRET_KEY"]}, "STRIPE_WEBHOOK_SECRET is required"),
        ({**REAL, "STRIPE_WEBHOOK_SECRET": "secret"}, "whsec_"),
        ({"STOREFRONT_BASE_URL": "shop.example"}, "STOREFRONT_BASE_URL"),
        ({"STRIPE_API_BASE": "ftp://x"}, "STRIPE_API_BASE"),
        ({"STRIPE_MAX_NETWORK_RETRIES": "many"}, "whole number"),
        ({"STRIPE_MAX_NETWORK_RETRIES": "99"}, "between"),
        ({"STOREFRONT_RECONCILE_INTERVAL": "-1"}, "at least"),
    ],
)
def test_bad_settings_fail_with_one_clear_line(environ: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint) as caught:
        Settings.from_env(environ)
    assert "\n" not in str(caught.value)


def test_reliability_settings_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {
            "STOREFRONT_DB_BUSY_TIMEOUT_MS": "250",
            "STOREFRONT_ALLOWED_PAYMENT_METHODS": " card, sepa_debit ",
            "STOREFRONT_STATUS_SYNC_AFTER": "0",
        }
    )
    assert settings.db_busy_timeout_ms == 250
    assert settings.allowed_payment_methods == ("card", "sepa_debit")
    assert settings.status_sync_after == 0
    defaults = Settings.from_env({})
    assert (defaults.allowed_payment_methods, defaults.status_sync_after) == ((), 30.0)
    with pytest.raises(ConfigError, match="STOREFRONT_ALLOWED_PAYMENT_METHODS"):
        Settings.from_env({"STOREFRONT_ALLOWED_PAYMENT_METHODS": "card;DROP"})


def test_the_removed_payment_method_setting_names_its_replacement() -> None:
    # Stripe's pinned API version has no payment_method_types on session create.
    with pytest.raises(ConfigError, match="replaced by STOREFRONT_ALLOWED_PAYMENT_METHODS"):
        Settings.from_env({"STOREFRONT_PAYMENT_METHOD_TYPES": "card"})
