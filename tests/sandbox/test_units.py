"""Settings, CLI flags, form parsing, test cards and money formatting, without a server."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt

import aiohttp
import pytest
import stripe

from storefront.sandbox import SandboxSettings, add_arguments, run_sandbox
from storefront.sandbox.__main__ import build_parser, settings_from
from storefront.sandbox.cards import Outcome, iban_ok, judge_card, judge_iban, luhn_ok
from storefront.sandbox.errors import StripeApiError
from storefront.sandbox.forms import parse_body
from storefront.sandbox.settings import mask_secret
from storefront.sandbox.webhooks import sign
from storefront.serving import free_port, wait_until_listening

TODAY = dt.date(2026, 11, 25)


def test_defaults_are_valid_and_generate_a_secret() -> None:
    settings = SandboxSettings()
    assert settings.public_url == "http://127.0.0.1:12111"
    assert settings.webhook_secret.startswith("whsec_")
    assert SandboxSettings().webhook_secret != settings.webhook_secret


def test_from_env_reads_every_knob() -> None:
    settings = SandboxSettings.from_env(
        {
            "SANDBOX_PUBLIC_URL": "http://127.0.0.1:9999",
            "SANDBOX_WEBHOOK_URL": "",
            "SANDBOX_LATENCY_MS": "150",
            "SANDBOX_DUPLICATE_RATE": "0.25",
            "SANDBOX_SHUFFLE_WINDOW": "4",
            "SANDBOX_FAILURE_RATE": "0.1",
            "SANDBOX_DROP_FIRST_RATE": "0.5",
            "SANDBOX_RETRY_SCHEDULE": "0.5, 1,2",
            "SANDBOX_DELIVERY_TIMEOUT": "3",
            "SANDBOX_SEED": "7",
            "SANDBOX_ASYNC_PAYMENT_DELAY": "1.5",
            "STRIPE_WEBHOOK_SECRET": "whsec_from_the_shop_env",
        }
    )
    assert settings.public_url == "http://127.0.0.1:9999"
    assert settings.webhook_url is None
    assert settings.latency_ms == 150
    assert settings.duplicate_rate == 0.25
    assert settings.shuffle_window == 4
    assert settings.failure_rate == 0.1
    assert settings.drop_first_rate == 0.5
    assert settings.retry_schedule == (0.5, 1.0, 2.0)
    assert settings.delivery_timeout == 3.0
    assert settings.seed == 7
    assert settings.async_payment_delay == 1.5
    assert settings.webhook_secret == "whsec_from_the_shop_env"


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"SANDBOX_DUPLICATE_RATE": "1.5"}, "duplicate_rate must be between 0 and 1"),
        ({"SANDBOX_FAILURE_RATE": "-0.1"}, "failure_rate must be between 0 and 1"),
        ({"SANDBOX_LATENCY_MS": "fast"}, "latency_ms must be an integer"),
        ({"SANDBOX_RETRY_SCHEDULE": "1,soon"}, "retry_schedule must be comma-separated"),
        ({"SANDBOX_RETRY_SCHEDULE": "1,-2"}, "retry_schedule delays must be >= 0"),
        ({"SANDBOX_WEBHOOK_SECRET": "secret"}, "webhook_secret must look like whsec_"),
        ({"SANDBOX_PUBLIC_URL": "localhost:1"}, "public_url must be an http(s) URL"),
        ({"SANDBOX_DELIVERY_TIMEOUT": "0"}, "delivery_timeout must be > 0"),
        ({"SANDBOX_LATENCY_JITTER_MS": "-1"}, "latency_jitter_ms must be >= 0"),
        (
            {"SANDBOX_LATENCY_MS": "100", "SANDBOX_LATENCY_JITTER_MS": "150"},
            "latency_jitter_ms must not exceed latency_ms (100)",
        ),
    ],
)
def test_bad_values_fail_with_a_clear_message(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        SandboxSettings.from_env(environ)


def test_flags_override_the_base_settings() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(
        ["--latency-ms", "40", "--retry-schedule", "1,2,4", "--shuffle-window", "3"]
    )
    base = SandboxSettings(duplicate_rate=0.5)
    settings = SandboxSettings.from_args(ns, base)
    assert (settings.latency_ms, settings.retry_schedule, settings.shuffle_window) == (
        40,
        (1.0, 2.0, 4.0),
        3,
    )
    assert settings.duplicate_rate == 0.5
    assert settings.webhook_secret == base.webhook_secret
    with pytest.raises(ValueError, match="drop_first_rate"):
        SandboxSettings.from_args(parser.parse_args(["--drop-first-rate", "2"]), base)


def test_cli_public_url_follows_host_and_port() -> None:
    ns = build_parser().parse_args(["--port", "12999", "--webhook-url", ""])
    settings = settings_from(ns, {})
    assert settings.public_url == "http://127.0.0.1:12999"
    assert settings.webhook_url is None


def test_describe_masks_the_secret() -> None:
    settings = SandboxSettings(webhook_secret="whsec_abcdefghijklmnop1234")
    text = "\n".join(settings.describe())
    assert "whsec_abcdefghijklmnop1234" not in text
    assert "whsec_****1234" in text
    assert mask_secret("nounderscore") == "****"


def test_form_parser_builds_nested_dicts_and_lists() -> None:
    body = (
        "line_items[0][price_data][unit_amount]=1999&line_items[0][quantity]=1"
        "&line_items[1][quantity]=2&metadata[order_id]=42&expand[0]=line_items"
        "&payment_method_types[]=card&payment_method_types[]=sepa_debit&empty="
    )
    assert parse_body(body) == {
        "line_items": [
            {"price_data": {"unit_amount": "1999"}, "quantity": "1"},
            {"quantity": "2"},
        ],
        "metadata": {"order_id": "42"},
        "expand": ["line_items"],
        "payment_method_types": ["card", "sepa_debit"],
        "empty": "",
    }


def test_form_parser_refuses_a_value_that_is_also_a_hash() -> None:
    with pytest.raises(StripeApiError) as caught:
        parse_body("metadata=x&metadata[a]=1")
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("number", "outcome", "message"),
    [
        ("4242 4242 4242 4242", Outcome.SUCCEED, None),
        ("4000-0000-0000-0002", Outcome.DECLINE, "Your card was declined."),
        ("4000000000009995", Outcome.DECLINE, "Your card has insufficient funds."),
        ("4000002500003155", Outcome.AUTHENTICATE, None),
        ("1234", Outcome.DECLINE, "Your card number is invalid."),
    ],
)
def test_test_cards(number: str, outcome: Outcome, message: str | None) -> None:
    attempt = judge_card(number, "12/34", "123", TODAY)
    assert (attempt.outcome, attempt.message) == (outcome, message)


def test_expiry_this_month_is_still_valid_and_last_month_is_not() -> None:
    assert judge_card("4242424242424242", "11/26", "123", TODAY).outcome is Outcome.SUCCEED
    late = judge_card("4242424242424242", "10/26", "123", TODAY)
    assert late.message == "Your card's expiration date is in the past."


def test_checksums() -> None:
    assert luhn_ok("4242424242424242") and not luhn_ok("4242424242424241")
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE89370400440532013001")
    assert judge_iban("de89 3704 0044 0532 0130 00").outcome is Outcome.SETTLE_LATER_OK
    assert judge_iban("DE62370400440532013001").outcome is Outcome.SETTLE_LATER_FAIL


def test_signature_matches_stripes_scheme() -> None:
    payload = '{"id": "evt_1"}'
    header = sign(payload, "whsec_test_secret", 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    # Without a tolerance the SDK checks the HMAC only, so an old timestamp is fine here.
    assert stripe.WebhookSignature.verify_header(payload, header, "whsec_test_secret")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, header, "whsec_other_secret")


async def test_run_sandbox_serves_until_shutdown() -> None:
    port = free_port()
    shutdown = asyncio.Event()
    settings = SandboxSettings(public_url=f"http://127.0.0.1:{port}", webhook_url=None)
    task = asyncio.create_task(run_sandbox(settings, "127.0.0.1", port, shutdown))
    await wait_until_listening("127.0.0.1", port)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/_sandbox/stats") as response,
    ):
        assert (await response.json())["events_created"] == 0
    shutdown.set()
    await asyncio.wait_for(task, 5)
