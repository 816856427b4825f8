"""Refunds retrieve and list, ``request`` on events, idempotency of executed failures."""

from __future__ import annotations

import uuid

import aiohttp
import pytest
import stripe

from .support import TEST_KEY, Sandbox, session_params

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
CARD = {
    "email": "shopper@example.com",
    "number": "4242424242424242",
    "expiry": "12/34",
    "cvc": "123",
    "name": "Ada",
}


async def paid_session(sandbox: Sandbox, http: aiohttp.ClientSession) -> stripe.checkout.Session:
    """A session paid with 4242 on the hosted page."""
    session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
    async with http.post(f"{session.url}/card", data=CARD, allow_redirects=False) as response:
        assert response.status == 303
    return await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)


def events_about(sandbox: Sandbox, object_id: str, event_type: str) -> list[dict]:
    """Events the sandbox recorded about ``object_id`` (by id or payment intent)."""
    return [
        e
        for e in sandbox.state.events.values()
        if e["type"] == event_type
        and object_id in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
    ]


async def test_refunds_can_be_retrieved_and_listed_newest_first(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    first, second = await paid_session(sandbox, http), await paid_session(sandbox, http)
    refunds = sandbox.client.v1.refunds
    a = await refunds.create_async(params={"payment_intent": first.payment_intent, "amount": 100})
    b = await refunds.create_async(params={"payment_intent": second.payment_intent})
    c = await refunds.create_async(params={"payment_intent": first.payment_intent, "amount": 200})

    got = await refunds.retrieve_async(b.id)
    assert isinstance(got, stripe.Refund)
    assert (got.id, got.amount, got.payment_intent) == (b.id, 3998, second.payment_intent)

    newest = await refunds.list_async(params={"limit": 3})
    assert [r.id for r in newest.data] == [c.id, b.id, a.id]
    of_first = await refunds.list_async(params={"payment_intent": first.payment_intent})
    assert [r.id for r in of_first.data] == [c.id, a.id]
    of_charge = await refunds.list_async(params={"charge": a.charge})
    assert [r.id for r in of_charge.data] == [c.id, a.id]
    page = await refunds.list_async(
        params={"payment_intent": first.payment_intent, "limit": 1, "starting_after": c.id}
    )
    assert ([r.id for r in page.data], page.has_more) == ([a.id], False)
    assert (await refunds.list_async(params={"charge": "ch_nothing"})).data == []


async def test_an_unknown_refund_is_404_resource_missing(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.refunds.retrieve_async("re_missing")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
    assert caught.value.user_message == "No such refund: 're_missing'"


async def test_refund_lists_refuse_unknown_filters(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.refunds.list_async(params={"customer": "cus_1"})  # type: ignore[typeddict-unknown-key]
    assert caught.value.param == "customer"


async def test_charge_refunded_names_the_request_that_caused_it(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    session = await paid_session(sandbox, http)
    key = f"refund-{uuid.uuid4()}"
    refund = await sandbox.client.v1.refunds.create_async(
        params={"payment_intent": session.payment_intent}, options={"idempotency_key": key}
    )
    (event,) = events_about(sandbox, session.payment_intent, "charge.refunded")
    assert event["request"] == {
        "id": refund.last_response.request_id,
        "idempotency_key": key,
    }
    assert event["request"]["id"].startswith("req_")


async def test_events_a_shopper_or_time_caused_name_no_request(
    make_sandbox, http: aiohttp.ClientSession
) -> None:
    async with make_sandbox() as sandbox:
        paid = await paid_session(sandbox, http)
        left = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
        async with http.post(f"{sandbox.url}/_sandbox/clock/advance?seconds=90000") as response:
            assert response.status == 200
        for object_id, event_type in [
            (paid.id, "checkout.session.completed"),
            (left.id, "checkout.session.expired"),
        ]:
            (event,) = events_about(sandbox, object_id, event_type)
            assert event["request"] == {"id": None, "idempotency_key": None}


async def test_an_executed_failure_is_saved_and_replayed(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    session = await paid_session(sandbox, http)
    key = f"too-much-{uuid.uuid4()}"
    form = {"payment_intent": session.payment_intent, "amount": "999999"}
    answers = []
    for _ in range(2):
        async with http.post(
            f"{sandbox.url}/v1/refunds", data=form, headers=AUTH | {"Idempotency-Key": key}
        ) as response:
            answers.append((response.status, response.headers, await response.json()))
    (first_status, first_headers, first_body), (status, headers, body) = answers
    assert first_status == 400 and first_body["error"]["param"] == "amount"
    assert "Idempotent-Replayed" not in first_headers
    assert (status, body) == (first_status, first_body)
    assert headers["Idempotent-Replayed"] == "true"
    assert headers["Original-Request"] == first_headers["Request-Id"]
    assert events_about(sandbox, session.payment_intent, "charge.refunded") == []


async def test_a_saved_failure_stays_even_when_the_state_would_now_allow_it(
    sandbox: Sandbox,
) -> None:
    # Expiring a paid session fails once it ran; the same key keeps answering that.
    session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
    key = f"expire-{uuid.uuid4()}"
    await sandbox.client.v1.checkout.sessions.expire_async(session.id)
    with pytest.raises(stripe.InvalidRequestError) as first:
        await sandbox.client.v1.checkout.sessions.expire_async(
            session.id, options={"idempotency_key": key}
        )
    with pytest.raises(stripe.InvalidRequestError) as again:
        await sandbox.client.v1.checkout.sessions.expire_async(
            session.id, options={"idempotency_key": key}
        )
    assert again.value.user_message == first.value.user_message
    assert again.value.headers["Idempotent-Replayed"] == "true"


async def test_a_404_of_an_executing_endpoint_is_saved(sandbox: Sandbox) -> None:
    key = f"missing-{uuid.uuid4()}"
    for replayed in (None, "true"):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            await sandbox.client.v1.refunds.create_async(
                params={"payment_intent": "pi_missing"}, options={"idempotency_key": key}
            )
        assert caught.value.http_status == 404
        assert caught.value.headers.get("Idempotent-Replayed") == replayed


@pytest.mark.parametrize(
    "bad",
    [{"amount": "-5"}, {"reason": "changed_my_mind"}, {}],
    ids=["amount", "reason", "missing-intent"],
)
async def test_a_parameter_validation_failure_saves_nothing(
    sandbox: Sandbox, http: aiohttp.ClientSession, bad: dict[str, str]
) -> None:
    session = await paid_session(sandbox, http)
    key = f"fix-{uuid.uuid4()}"
    params = {"payment_intent": session.payment_intent} | bad
    if not bad:
        params = {}
    with pytest.raises(stripe.InvalidRequestError):
        await sandbox.client.v1.refunds.create_async(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": key},
        )
    assert not any(scope[1] == key for scope in sandbox.state.idempotency)
    # Fixed and retried with the same key: it runs (a key differs only by its first use).
    refund = await sandbox.client.v1.refunds.create_async(
        params={"payment_intent": session.payment_intent}, options={"idempotency_key": key}
    )
    assert refund.last_response.headers.get("Idempotent-Replayed") is None
    assert refund.amount == 3998
