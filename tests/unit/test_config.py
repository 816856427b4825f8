"""Settings from the environment: sensible defaults and one clear line when wrong."""

from __future__ import annotations

import dataclasses
import typing

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
        ({"STOREFRONT_RECONCILE_INTERVAL": "-1"}, "between 0 and 86400"),
        ({"STOREFRONT_DATABASE_URL": "mysql://u:hunter2@h/db"}, "postgresql://"),
        ({"STOREFRONT_DATABASE_URL": "postgresql://u:hunter2@h"}, "postgresql://"),
        ({"STOREFRONT_DATABASE_URL": "postgresql://u:hunter2@h:port/db"}, "malformed port"),
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


# Every numeric setting read from the environment, with a value in range.
NUMERIC = {
    "STRIPE_MAX_NETWORK_RETRIES": ("max_network_retries", "3", 3),
    "STOREFRONT_RECONCILE_INTERVAL": ("reconcile_interval", "0.5", 0.5),
    "STOREFRONT_RECONCILE_AFTER": ("reconcile_after", "0", 0.0),
    "STOREFRONT_DB_BUSY_TIMEOUT_MS": ("db_busy_timeout_ms", "250", 250),
    "STOREFRONT_STATUS_SYNC_AFTER": ("status_sync_after", "12.5", 12.5),
    "STOREFRONT_CHECKOUT_RATE_LIMIT": ("checkout_rate_limit", "0", 0),
    "STOREFRONT_PROXY_HOPS": ("proxy_hops", "1", 1),
    "STOREFRONT_CHECKOUT_EXPIRES_AFTER": ("checkout_expires_after", "1800", 1800),
    "STOREFRONT_OUTBOX_INTERVAL": ("outbox_interval", "0.5", 0.5),
    "STOREFRONT_LINE_ITEMS_INTERVAL": ("line_items_interval", "0", 0.0),
    "STOREFRONT_CART_MAX_AGE": ("cart_max_age", "7200", 7200),
    "STOREFRONT_STOCK_POLL_INTERVAL": ("stock_poll_interval", "2", 2),
}
# Settings fields that no environment variable sets.
NOT_FROM_ENV = {"max_body_bytes"}
MALFORMED = ["nan", "NaN", "inf", "-inf", "infinity", "1e20", "1e3", "-5", "1_0", "0x10", "ten"]


def test_every_numeric_setting_is_covered_here() -> None:
    # A new numeric field must join NUMERIC, so its validation is tested too.
    hints = typing.get_type_hints(Settings)
    numeric = {
        f.name for f in dataclasses.fields(Settings) if hints[f.name] in (int, float)
    } - NOT_FROM_ENV
    assert numeric == {field for field, _, _ in NUMERIC.values()}


@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_numeric_settings_in_range_are_read(name: str) -> None:
    field, raw, expected = NUMERIC[name]
    assert getattr(Settings.from_env({name: raw}), field) == expected


@pytest.mark.parametrize("raw", MALFORMED)
@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_malformed_numbers_stop_start_up_naming_the_setting(name: str, raw: str) -> None:
    # nan, inf and 1e20 once made the reconciler match no order at all.
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: raw})
    message = str(caught.value)
    assert message.startswith(f"{name} must be ") and "\n" not in message


@pytest.mark.parametrize(
    ("name", "too_big"),
    [
        ("STRIPE_MAX_NETWORK_RETRIES", "11"),
        ("STOREFRONT_RECONCILE_INTERVAL", "86401"),
        ("STOREFRONT_RECONCILE_AFTER", "2592001"),
        ("STOREFRONT_DB_BUSY_TIMEOUT_MS", "600001"),
        ("STOREFRONT_STATUS_SYNC_AFTER", "86400.5"),
        ("STOREFRONT_CHECKOUT_RATE_LIMIT", "10001"),
        ("STOREFRONT_PROXY_HOPS", "6"),
    ],
)
def test_numbers_past_the_documented_range_are_refused(name: str, too_big: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name} must be between"):
        Settings.from_env({name: too_big})


def test_a_postgresql_url_selects_postgresql_and_its_password_stays_hidden() -> None:
    from storefront.config import redacted

    url = "postgresql://shop:hunter2@db.internal:5432/shop"
    settings = Settings.from_env({"STOREFRONT_DATABASE_URL": url})
    assert settings.database_url == url
    assert "hunter2" not in repr(settings)
    assert redacted(url) == "postgresql://shop:***@db.internal:5432/shop"
    assert Settings.from_env({}).database_url is None


@pytest.mark.parametrize("raw", ["mysql://u:hunter2@h/db", "postgresql://u:hunter2@h"])
def test_a_bad_database_url_is_refused_without_echoing_it(raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"STOREFRONT_DATABASE_URL": raw})
    assert "hunter2" not in str(error.value)
