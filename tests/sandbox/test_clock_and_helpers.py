"""Test helpers without a browser: pay a session by API, and the test clock.

Each test runs its own sandbox: advancing the clock moves that sandbox's time for good.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
import stripe

from .support import Sandbox, session_params

# Settlement long enough that only the test clock, never real time, settles here.
SLOW = {"async_payment_delay": 3600.0}


async def post(
    http: aiohttp.ClientSession, url: str, data: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    async with http.post(url, data=data or {}) as response:
        return response.status, await response.json()


async def advance(sandbox: Sandbox, http: aiohttp.ClientSession, seconds: int) -> dict[str, Any]:
    status, body = await post(http, f"{sandbox.url}/_sandbox/clock/advance?seconds={seconds}")
    assert status == 200, body
    return body


async def complete(
    sandbox: Sandbox, http: aiohttp.ClientSession, session_id: str, **form: str
) -> tuple[int, dict[str, Any]]:
    return await post(http, f"{sandbox.url}/_sandbox/sessions/{session_id}/complete", form)


async def retrieve(sandbox: Sandbox, session_id: str) -> stripe.checkout.Session:
    return await sandbox.client.v1.checkout.sessions.retrieve_async(
        session_id, params={"expand": ["payment_intent"]}
    )


async def test_the_clock_reads_real_time_until_advanced(
    make_sandbox, http: aiohttp.ClientSession
) -> None:
    async with make_sandbox() as sandbox:
        async with http.get(f"{sandbox.url}/_sandbox/clock") as response:
            clock = await response.json()
        assert clock["object"] == "sandbox.clock" and clock["offset"] == 0
        assert abs(clock["now"] - time.time()) < 5
        moved = await advance(sandbox, http, 7200)
        assert moved["offset"] == 7200 and moved["now"] >= clock["now"] + 7200
        # Objects made afterwards carry sandbox time.
        session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
        assert session.created >= clock["now"] + 7200
        assert session.expires_at == session.created + 24 * 3600


async def test_advancing_past_expires_at_expires_the_session_at_once(
    make_sandbox, http: aiohttp.ClientSession
) -> None:
    async with make_sandbox() as sandbox:
        soon = await sandbox.client.v1.checkout.sessions.create_async(
            params=session_params(expires_at=int(time.time()) + 1800)
        )
        later = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
        # To one second short of expires_at in sandbox time: moving by 1799 s from the test's
        # whole-second clock expired it whenever a second boundary passed in between.
        status, moved = await post(
            http, f"{sandbox.url}/_sandbox/clock/advance?to={soon.expires_at - 1}"
        )
        assert status == 200 and moved["expired_sessions"] == 0, moved
        assert (await retrieve(sandbox, soon.id)).status == "open"
        assert (await advance(sandbox, http, 1))["expired_sessions"] == 1
        assert (await retrieve(sandbox, soon.id)).status == "expired"
        assert (await retrieve(sandbox, later.id)).status == "open"
        await sandbox.receiver.wait_for(
            lambda: sandbox.receiver.types_about(soon.id) == ["checkout.session.expired"]
        )


async def test_completing_by_api_with_a_card_pays_the_session(
    make_sandbox, http: aiohttp.ClientSession
) -> None:
    async with make_sandbox() as sandbox:
        session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
        status, body = await complete(sandbox, http, session.id, email="ada@example.com")
        assert status == 200
        assert (body["id"], body["status"], body["payment_status"]) == (
            session.id,
            "complete",
            "paid",
        )
        after = await retrieve(sandbox, session.id)
        assert after.customer_details is not None
        assert after.customer_details.email == "ada@example.com"
        assert after.payment_intent.status == "succeeded"
        await sandbox.receiver.wait_for(
            lambda: sandbox.receiver.types_about(session.id) == ["checkout.session.completed"]
        )


@pytest.mark.parametrize(
    ("outcome", "event", "intent_status"),
    [
        ("succeeded", "checkout.session.async_payment_succeeded", "succeeded"),
        ("failed", "checkout.session.async_payment_failed", "requires_payment_method"),
    ],
)
async def test_a_bank_debit_completed_by_api_settles_when_the_clock_advances(
    make_sandbox, http: aiohttp.ClientSession, outcome: str, event: str, intent_status: str
) -> None:
    async with make_sandbox(**SLOW) as sandbox:
        session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
        status, body = await complete(
            sandbox, http, session.id, payment_method="sepa_debit", outcome=outcome
        )
        assert (status, body["payment_status"]) == (200, "unpaid")
        assert (await retrieve(sandbox, session.id)).payment_intent.status == "processing"
        assert (await advance(sandbox, http, 3599))["settled_payments"] == 0
        assert (await retrieve(sandbox, session.id)).payment_intent.status == "processing"
        assert (await advance(sandbox, http, 1))["settled_payments"] == 1
        after = await retrieve(sandbox, session.id)
        assert after.payment_intent.status == intent_status
        assert after.payment_status == ("paid" if outcome == "succeeded" else "unpaid")
        await sandbox.receiver.wait_for(
            lambda: (
                sandbox.receiver.types_about(session.id) == ["checkout.session.completed", event]
            )
        )


async def test_real_time_still_settles_a_debit(make_sandbox, http: aiohttp.ClientSession) -> None:
    async with make_sandbox(async_payment_delay=0.2) as sandbox:
        session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
        await complete(sandbox, http, session.id, payment_method="sepa_debit")
        await sandbox.state.wait_idle(5)
        assert (await retrieve(sandbox, session.id)).payment_status == "paid"


@pytest.mark.parametrize(
    ("overrides", "form", "param"),
    [
        ({}, {"payment_method": "bitcoin"}, "payment_method"),
        ({"allowed_payment_method_types": ["card"]}, {"payment_method": "sepa_debit"}, None),
        ({}, {"outcome": "failed"}, "outcome"),
        ({}, {"colour": "blue"}, "colour"),
    ],
    ids=["unknown-method", "method-not-offered", "card-cannot-fail-later", "unknown-param"],
)
async def test_completing_by_api_refuses_bad_requests(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    overrides: dict[str, Any],
    form: dict[str, str],
    param: str | None,
) -> None:
    session = await sandbox.client.v1.checkout.sessions.create_async(
        params=session_params(**overrides)
    )
    status, body = await complete(sandbox, http, session.id, **form)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert body["error"].get("param") == (param or "payment_method")
    assert (await retrieve(sandbox, session.id)).status == "open"


async def test_completing_a_closed_or_unknown_session_is_refused(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
    await sandbox.client.v1.checkout.sessions.expire_async(session.id)
    status, body = await complete(sandbox, http, session.id)
    assert status == 400 and "expired" in body["error"]["message"]
    status, body = await complete(sandbox, http, "cs_test_missing")
    assert status == 404 and body["error"]["code"] == "resource_missing"


@pytest.mark.parametrize(
    "query",
    ["", "seconds=-5", "seconds=soon", "seconds=5&to=99", "to=1000", "minutes=3"],
    ids=["nothing", "negative", "word", "both", "past", "unknown"],
)
async def test_the_clock_only_moves_forward_on_clear_orders(
    sandbox: Sandbox, http: aiohttp.ClientSession, query: str
) -> None:
    status, body = await post(http, f"{sandbox.url}/_sandbox/clock/advance?{query}")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    async with http.get(f"{sandbox.url}/_sandbox/clock") as response:
        assert (await response.json())["offset"] == 0


async def test_the_clock_moves_to_a_given_time(make_sandbox, http: aiohttp.ClientSession) -> None:
    async with make_sandbox() as sandbox:
        target = int(time.time()) + 86400
        status, body = await post(
            http, f"{sandbox.url}/_sandbox/clock/advance", {"to": str(target)}
        )
        assert status == 200 and body["now"] >= target
