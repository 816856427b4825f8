"""Sandbox-only API behaviour: raw auth errors, routes, knobs, events, refunds, listings."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid

import aiohttp
import pytest
import stripe

from .support import TEST_KEY, Sandbox, session_params


async def paid_session(sandbox: Sandbox, http: aiohttp.ClientSession) -> stripe.checkout.Session:
    """A session paid with 4242 on the hosted page."""
    session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
    form = {
        "email": "shopper@example.com",
        "number": "4242424242424242",
        "expiry": "12/34",
        "cvc": "123",
        "name": "Ada",
    }
    async with http.post(f"{session.url}/card", data=form, allow_redirects=False) as response:
        assert response.status == 303
    return await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        ({}, "You did not provide an API key"),
        ({"Authorization": "Bearer pk_test_publishable000"}, "Invalid API Key provided"),
        ({"Authorization": "Bearer sk_live_1234567890abcdef"}, "Invalid API Key provided"),
    ],
    ids=["missing", "publishable", "live"],
)
async def test_requests_without_a_test_secret_key_get_401(
    sandbox: Sandbox, http, headers: dict[str, str], needle: str
) -> None:
    async with http.get(f"{sandbox.url}/v1/events", headers=headers) as response:
        body = await response.json()
    assert response.status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert needle in body["error"]["message"]
    assert "1234567890abcdef" not in body["error"]["message"]


async def test_basic_auth_is_accepted_like_curl_u(sandbox: Sandbox, http) -> None:
    token = base64.b64encode(f"{TEST_KEY}:".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    async with http.get(f"{sandbox.url}/v1/events?limit=1", headers=headers) as response:
        assert response.status == 200


async def test_unknown_routes_get_stripes_404(sandbox: Sandbox, http) -> None:
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    async with http.get(f"{sandbox.url}/v1/customers", headers=headers) as response:
        body = await response.json()
    assert response.status == 404
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("Unrecognized request URL (GET: /v1/customers)")


async def test_failure_rate_answers_api_error_without_acting(make_sandbox) -> None:
    async with make_sandbox(failure_rate=1.0) as sandbox:
        key = f"retry-{uuid.uuid4()}"
        with pytest.raises(stripe.APIError) as caught:
            await sandbox.client.v1.checkout.sessions.create_async(
                params=session_params(), options={"idempotency_key": key}
            )
        assert caught.value.http_status == 500
        assert sandbox.state.sessions == {}
        assert sandbox.state.stats["api_failures_injected"] == 1
        # The failure was not stored under the key: the retry creates the session.
        sandbox.state.update_settings(failure_rate=0.0)
        session = await sandbox.client.v1.checkout.sessions.create_async(
            params=session_params(), options={"idempotency_key": key}
        )
        assert session.last_response.headers.get("Idempotent-Replayed") is None
        assert list(sandbox.state.sessions) == [session.id]


async def test_latency_is_added_to_every_call(make_sandbox) -> None:
    async with make_sandbox(latency_ms=250) as sandbox:
        started = time.monotonic()
        await sandbox.client.v1.events.list_async()
        assert time.monotonic() - started >= 0.25


async def test_jitter_spreads_each_call_around_the_latency(make_sandbox) -> None:
    # 200 ms ± 150: every call within the range, and not all alike (a constant
    # latency lines concurrent callers up in step).
    async with make_sandbox(latency_ms=200, latency_jitter_ms=150, seed=3) as sandbox:

        async def timed() -> float:
            started = time.monotonic()
            await sandbox.client.v1.events.list_async()
            return time.monotonic() - started

        took = await asyncio.gather(*(timed() for _ in range(12)))
    assert min(took) >= 0.05
    assert max(took) < 0.35 + 0.2  # the upper end, plus room for a busy machine
    assert max(took) - min(took) > 0.05


async def test_concurrent_requests_with_one_key_create_one_session(sandbox: Sandbox) -> None:
    key = f"double-click-{uuid.uuid4()}"
    before = len(sandbox.state.sessions)
    sessions = await asyncio.gather(
        *(
            sandbox.client.v1.checkout.sessions.create_async(
                params=session_params(), options={"idempotency_key": key}
            )
            for _ in range(8)
        )
    )
    assert len({s.id for s in sessions}) == 1
    assert len(sandbox.state.sessions) == before + 1


async def test_idempotency_keys_are_scoped_per_api_key(sandbox: Sandbox) -> None:
    key = f"shared-{uuid.uuid4()}"
    first = await sandbox.client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": key}
    )
    other = await sandbox.client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": key, "api_key": "sk_test_other_0001"}
    )
    assert other.id != first.id


async def test_validation_errors_are_not_stored_under_the_key(sandbox: Sandbox) -> None:
    key = f"fix-and-retry-{uuid.uuid4()}"
    with pytest.raises(stripe.InvalidRequestError):
        await sandbox.client.v1.checkout.sessions.create_async(
            params=session_params(mode="subscription"), options={"idempotency_key": key}
        )
    session = await sandbox.client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": key}
    )
    assert session.status == "open"


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"mode": "setup"}, "mode"),
        ({"success_url": "not a url"}, "success_url"),
        ({"customer_email": "nobody"}, "customer_email"),
        ({"allowed_payment_method_types": ["bitcoin"]}, "allowed_payment_method_types[0]"),
        # Removed from session create by 2026-10-28.endive: refused as unknown.
        ({"payment_method_types": ["card"]}, "payment_method_types"),
        ({"ui_mode": "hosted"}, "ui_mode"),
        (
            {
                "line_items": [
                    {
                        "quantity": 0,
                        "price_data": {
                            "currency": "eur",
                            "unit_amount": 5,
                            "product_data": {"name": "x"},
                        },
                    }
                ]
            },
            "line_items[0][quantity]",
        ),
        ({"line_items": [{"price": "price_123", "quantity": 1}]}, "line_items[0][price]"),
        ({"expires_at": "soon"}, "expires_at"),
    ],
    ids=[
        "mode",
        "url",
        "email",
        "method",
        "removed-payment-method-types",
        "old-ui-mode",
        "quantity",
        "saved-price",
        "expires-not-int",
    ],
)
async def test_create_validation_names_the_param(
    sandbox: Sandbox, overrides: dict[str, object], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.checkout.sessions.create_async(
            params=session_params(**overrides)  # type: ignore[arg-type]
        )
    assert caught.value.param == param


async def test_allowed_methods_filter_what_suits_the_currency(sandbox: Sandbox) -> None:
    # A filter, not a demand: SEPA Direct Debit suits euros only, so it drops out.
    params = session_params(allowed_payment_method_types=["card", "sepa_debit"])
    params["line_items"][0]["price_data"]["currency"] = "usd"
    session = await sandbox.client.v1.checkout.sessions.create_async(params=params)
    assert session.payment_method_types == ["card"]
    assert session.allowed_payment_method_types == ["card", "sepa_debit"]
    # Nothing left to offer is an error naming the filter.
    params = session_params(allowed_payment_method_types=["sepa_debit"])
    params["line_items"][0]["price_data"]["currency"] = "usd"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.checkout.sessions.create_async(params=params)
    assert caught.value.param == "allowed_payment_method_types"


async def test_hosted_page_is_the_ui_mode_of_the_pinned_version(sandbox: Sandbox) -> None:
    session = await sandbox.client.v1.checkout.sessions.create_async(
        params=session_params(ui_mode="hosted_page", excluded_payment_method_types=["sepa_debit"])
    )
    assert session.ui_mode == "hosted_page"
    assert session.payment_method_types == ["card"]


async def test_expand_line_items_on_retrieve(sandbox: Sandbox) -> None:
    created = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
    fetched = await sandbox.client.v1.checkout.sessions.retrieve_async(
        created.id, params={"expand": ["line_items"]}
    )
    assert fetched.line_items is not None
    assert fetched.line_items.data[0].quantity == 2
    with pytest.raises(stripe.InvalidRequestError):
        await sandbox.client.v1.checkout.sessions.retrieve_async(
            created.id, params={"expand": ["customer"]}
        )


async def test_events_retrieve_and_list_filters(sandbox: Sandbox, http) -> None:
    session = await paid_session(sandbox, http)
    await sandbox.state.wait_idle(5)
    completed = await sandbox.client.v1.events.list_async(
        params={"type": "checkout.session.completed", "limit": 100}
    )
    mine = [e for e in completed.data if e.data.object.id == session.id]
    assert len(mine) == 1
    assert all(e.type == "checkout.session.completed" for e in completed.data)
    event = await sandbox.client.v1.events.retrieve_async(mine[0].id)
    assert isinstance(event, stripe.Event)
    assert event.data.object.payment_status == "paid"
    wildcard = await sandbox.client.v1.events.list_async(params={"type": "checkout.session.*"})
    assert all(e.type.startswith("checkout.session.") for e in wildcard.data)
    with pytest.raises(stripe.InvalidRequestError):
        await sandbox.client.v1.events.retrieve_async("evt_missing")


async def test_events_paginate_newest_first(sandbox: Sandbox) -> None:
    for _ in range(3):
        created = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
        await sandbox.client.v1.checkout.sessions.expire_async(created.id)
    first = await sandbox.client.v1.events.list_async(params={"limit": 2})
    assert first.object == "list" and first.url == "/v1/events"
    assert len(first.data) == 2 and first.has_more is True
    assert first.data[0].created >= first.data[1].created
    second = await sandbox.client.v1.events.list_async(
        params={"limit": 2, "starting_after": first.data[-1].id}
    )
    assert {e.id for e in second.data}.isdisjoint({e.id for e in first.data})
    everything = [e["id"] for e in reversed(sandbox.state.events.values())]
    assert [e.id for e in first.data + second.data] == everything[:4]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.events.list_async(params={"limit": 500})
    assert caught.value.param == "limit"


async def test_list_sessions_by_payment_intent(sandbox: Sandbox, http) -> None:
    session = await paid_session(sandbox, http)
    found = await sandbox.client.v1.checkout.sessions.list_async(
        params={"payment_intent": session.payment_intent, "limit": 1}
    )
    assert [s.id for s in found.data] == [session.id]


async def test_partial_then_full_refund_emits_charge_refunded(sandbox: Sandbox, http) -> None:
    session = await paid_session(sandbox, http)
    refund = await sandbox.client.v1.refunds.create_async(
        params={"payment_intent": session.payment_intent, "amount": 1000}
    )
    assert isinstance(refund, stripe.Refund)
    assert (refund.amount, refund.status, refund.payment_intent) == (
        1000,
        "succeeded",
        session.payment_intent,
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.refunds.create_async(
            params={"payment_intent": session.payment_intent, "amount": 5000}
        )
    assert caught.value.param == "amount"
    await sandbox.client.v1.refunds.create_async(params={"payment_intent": session.payment_intent})
    await sandbox.state.wait_idle(5)
    charges = [
        r.event["data"]["object"]
        for r in sandbox.receiver.received
        if r.event["type"] == "charge.refunded"
        and r.event["data"]["object"]["payment_intent"] == session.payment_intent
    ]
    assert [(c["amount_refunded"], c["refunded"]) for c in charges] == [
        (1000, False),
        (3998, True),
    ]
    assert all(c["object"] == "charge" and c["amount"] == 3998 for c in charges)
    assert all(c["metadata"] == {"order_id": "42"} and c["currency"] == "eur" for c in charges)
    with pytest.raises(stripe.InvalidRequestError):
        await sandbox.client.v1.refunds.create_async(
            params={"payment_intent": session.payment_intent}
        )


async def test_refund_of_an_unpaid_session_is_refused(sandbox: Sandbox, http) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.refunds.create_async(params={"payment_intent": "pi_unknown"})
    assert caught.value.http_status == 404
