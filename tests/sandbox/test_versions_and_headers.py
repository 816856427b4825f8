"""Stripe-Version and Request-Id on every answer; strict pinned-version mode."""

from __future__ import annotations

import argparse

import aiohttp
import pytest
import stripe
from multidict import CIMultiDict

from storefront.sandbox import SandboxSettings, add_arguments
from storefront.sandbox.versions import KNOWN_API_VERSIONS, PINNED_API_VERSION

from .support import TEST_KEY, Sandbox, session_params

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
OLDER = "2025-03-31.basil"


async def get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, CIMultiDict[str], dict]:
    async with http.get(url, headers=headers) as response:
        return response.status, response.headers.copy(), await response.json()


def test_the_sandbox_pins_the_version_the_sdk_is_generated_for() -> None:
    assert stripe.api_version == PINNED_API_VERSION
    assert KNOWN_API_VERSIONS[-1] == PINNED_API_VERSION


@pytest.mark.parametrize(
    "version",
    ["2019-2-19", "banana", "2025-09-30.acacia", "2026-10-28", "2099-01-01.zinnia", ""],
    ids=["malformed-date", "word", "wrong-release-name", "no-release-name", "future", "empty"],
)
async def test_an_invalid_version_is_refused_as_stripe_refuses_it(
    sandbox: Sandbox, http: aiohttp.ClientSession, version: str
) -> None:
    status, headers, body = await get(
        http, f"{sandbox.url}/v1/events", AUTH | {"Stripe-Version": version}
    )
    assert status == 400
    assert body == {
        "error": {
            "message": f"Invalid Stripe API version: {version}",
            "type": "invalid_request_error",
        }
    }
    # Not echoed back: the answer is in the account's default version.
    assert headers["Stripe-Version"] == PINNED_API_VERSION
    assert headers["Request-Id"].startswith("req_")


async def test_the_sdk_gets_invalid_request_error_for_a_bad_version(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.checkout.sessions.create_async(
            params=session_params(), options={"stripe_version": "2026-13-45"}
        )
    assert caught.value.http_status == 400
    assert "Invalid Stripe API version: 2026-13-45" in str(caught.value)


async def test_a_known_version_is_accepted_and_echoed(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, headers, _ = await get(
        http, f"{sandbox.url}/v1/events", AUTH | {"Stripe-Version": OLDER}
    )
    assert (status, headers["Stripe-Version"]) == (200, OLDER)


async def test_without_a_version_the_account_default_is_used_and_returned(
    make_sandbox, http: aiohttp.ClientSession
) -> None:
    async with make_sandbox(api_version=OLDER) as sandbox:
        status, headers, _ = await get(http, f"{sandbox.url}/v1/events", AUTH)
        assert (status, headers["Stripe-Version"]) == (200, OLDER)
        # The SDK always sends its own pinned version, which wins over the default.
        events = await sandbox.client.v1.events.list_async()
        assert events.last_response.headers["Stripe-Version"] == PINNED_API_VERSION


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/customers", AUTH, 404),
        ("/v1/checkout/sessions/cs_test_missing", AUTH, 404),
        ("/v1/refunds/re_missing", AUTH, 404),
        ("/v1/events", {}, 401),
        ("/v1/events?limit=0", AUTH, 400),
        ("/v1/events", AUTH, 200),
    ],
    ids=["unknown-route", "unknown-session", "unknown-refund", "no-key", "bad-param", "ok"],
)
async def test_every_answer_carries_request_id_and_version(
    sandbox: Sandbox, http: aiohttp.ClientSession, path: str, headers: dict, status: int
) -> None:
    got, answer, _ = await get(http, sandbox.url + path, headers)
    assert got == status
    assert answer["Request-Id"].startswith("req_")
    assert answer["Stripe-Version"] == PINNED_API_VERSION


async def test_request_ids_are_unique_per_answer(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    ids = {(await get(http, f"{sandbox.url}/v1/nowhere", AUTH))[1]["Request-Id"] for _ in range(5)}
    assert len(ids) == 5


async def test_strict_mode_refuses_all_but_the_pinned_version(
    make_sandbox, http: aiohttp.ClientSession
) -> None:
    async with make_sandbox(require_api_version=True, api_version=OLDER) as sandbox:
        for extra in ({}, {"Stripe-Version": OLDER}):
            status, headers, body = await get(http, f"{sandbox.url}/v1/events", AUTH | extra)
            assert status == 400
            assert body["error"]["type"] == "invalid_request_error"
            assert "strict pinned-version mode" in body["error"]["message"]
            assert PINNED_API_VERSION in body["error"]["message"]
            assert headers["Stripe-Version"] == OLDER
        assert sandbox.state.sessions == {}
        session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
        assert session.last_response.headers["Stripe-Version"] == PINNED_API_VERSION


async def test_strict_mode_with_the_pinned_default_accepts_requests_without_a_header(
    make_sandbox, http: aiohttp.ClientSession
) -> None:
    async with make_sandbox(require_api_version=True) as sandbox:
        status, headers, _ = await get(http, f"{sandbox.url}/v1/events", AUTH)
        assert (status, headers["Stripe-Version"]) == (200, PINNED_API_VERSION)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SANDBOX_API_VERSION": "2026-10-28.banana"}, "api_version"),
        ({"SANDBOX_REQUIRE_API_VERSION": "maybe"}, "require_api_version"),
    ],
)
def test_version_settings_are_validated(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        SandboxSettings.from_env(env)


def test_version_settings_come_from_the_environment() -> None:
    settings = SandboxSettings.from_env(
        {"SANDBOX_API_VERSION": OLDER, "SANDBOX_REQUIRE_API_VERSION": "true"}
    )
    assert (settings.api_version, settings.require_api_version) == (OLDER, True)


def test_version_flags_override_the_base_settings() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(["--api-version", OLDER, "--require-api-version", "true"])
    settings = SandboxSettings.from_args(ns, SandboxSettings())
    assert (settings.api_version, settings.require_api_version) == (OLDER, True)
