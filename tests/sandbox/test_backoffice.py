"""Disputes and refunds made outside the shop: the helpers, the test cards, the API, events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import stripe

from tests.stripe_schema import problems_any

from .support import TEST_KEY, Sandbox, session_params

CARD = {"email": "shopper@example.com", "expiry": "12/34", "cvc": "123", "name": "Ada"}
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


@pytest.fixture
async def private(make_sandbox: Callable[..., Any]) -> AsyncIterator[Sandbox]:
    """A sandbox of this test's own, so lists hold only what the test made."""
    async with make_sandbox() as sandbox:
        yield sandbox


async def pay(sandbox: Sandbox, http: aiohttp.ClientSession, number: str) -> Any:
    """A session paid on the hosted page with ``number``, retrieved afterwards."""
    sessions = sandbox.client.v1.checkout.sessions
    session = await sessions.create_async(params=session_params())
    form = {**CARD, "number": number}
    async with http.post(f"{session.url}/card", data=form, allow_redirects=False) as response:
        assert response.status == 303
    return await sessions.retrieve_async(session.id)


async def helper(
    sandbox: Sandbox, http: aiohttp.ClientSession, path: str, **form: str
) -> tuple[int, Any]:
    """POST a ``/_sandbox`` helper; its status and JSON body."""
    async with http.post(f"{sandbox.url}/_sandbox{path}", data=form) as response:
        return response.status, await response.json()


def events(sandbox: Sandbox, prefix: str) -> list[dict[str, Any]]:
    """Recorded events whose type starts with ``prefix``, oldest first."""
    return [e for e in sandbox.state.events.values() if e["type"].startswith(prefix)]


def charge_of(sandbox: Sandbox, session_id: str) -> dict[str, Any]:
    """The session's charge as the API renders it."""
    charge = sandbox.state.sessions[session_id].charge
    assert charge is not None
    return charge.to_stripe()


@pytest.mark.parametrize(
    ("number", "reason"),
    [("4000000000000259", "fraudulent"), ("4000000000002685", "product_not_received")],
)
async def test_a_dispute_test_card_pays_then_is_disputed(
    private: Sandbox, http: aiohttp.ClientSession, number: str, reason: str
) -> None:
    session = await pay(private, http, number)
    assert session.payment_status == "paid"
    await private.state.wait_idle(5)
    types = [e["type"] for e in private.state.events.values()]
    assert types == [
        "checkout.session.completed",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    created, withdrawn = events(private, "charge.dispute.")
    dispute = created["data"]["object"]
    charge = charge_of(private, session.id)
    assert (dispute["charge"], dispute["payment_intent"]) == (charge["id"], session.payment_intent)
    assert (dispute["amount"], dispute["reason"], dispute["status"]) == (
        3998,
        reason,
        "needs_response",
    )
    assert dispute["balance_transactions"] == []
    assert created["request"] == {"id": None, "idempotency_key": None}
    [txn] = withdrawn["data"]["object"]["balance_transactions"]
    assert (txn["amount"], txn["fee"], txn["net"], txn["source"]) == (
        -3998,
        1500,
        -5498,
        dispute["id"],
    )
    assert charge["disputed"] is True
    # The webhook carried them as well.
    await private.receiver.wait_for(lambda: len(private.receiver.received) == 3)
    fetched = await private.client.v1.disputes.retrieve_async(dispute["id"])
    assert isinstance(fetched, stripe.Dispute)
    assert fetched.status == "needs_response"


async def test_a_plain_card_is_not_disputed(private: Sandbox, http: aiohttp.ClientSession) -> None:
    session = await pay(private, http, "4242424242424242")
    assert events(private, "charge.dispute.") == []
    assert charge_of(private, session.id)["disputed"] is False


async def test_the_helper_opens_a_partial_dispute_and_closes_it_won(
    private: Sandbox, http: aiohttp.ClientSession
) -> None:
    session = await pay(private, http, "4242424242424242")
    path = f"/sessions/{session.id}/dispute"
    status, opened = await helper(private, http, path, reason="duplicate", amount="1000")
    assert status == 200, opened
    assert (opened["object"], opened["amount"], opened["reason"]) == ("dispute", 1000, "duplicate")
    assert opened["payment_method_details"]["card"]["network_reason_code"] == "12.6.1"
    status, closed = await helper(private, http, f"/disputes/{opened['id']}/close", outcome="won")
    assert status == 200, closed
    assert closed["status"] == "won"
    assert [t["amount"] for t in closed["balance_transactions"]] == [-1000, 1000]
    types = [e["type"] for e in events(private, "charge.dispute.")]
    assert types == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]
    closed_event = events(private, "charge.dispute.closed")[0]
    assert closed_event["data"]["previous_attributes"] == {"status": "needs_response"}
    # Closing twice is refused and emits nothing.
    status, error = await helper(private, http, f"/disputes/{opened['id']}/close", outcome="lost")
    assert (status, error["error"]["type"]) == (400, "invalid_request_error")
    assert len(events(private, "charge.dispute.")) == 4


async def test_a_lost_dispute_gives_nothing_back(
    private: Sandbox, http: aiohttp.ClientSession
) -> None:
    session = await pay(private, http, "4000000000000259")
    [dispute] = (await private.client.v1.disputes.list_async()).data
    status, closed = await helper(private, http, f"/disputes/{dispute.id}/close", outcome="lost")
    assert (status, closed["status"]) == (200, "lost")
    assert len(closed["balance_transactions"]) == 1
    assert events(private, "charge.dispute.funds_reinstated") == []
    assert charge_of(private, session.id)["disputed"] is True


@pytest.mark.parametrize(
    ("form", "status", "param"),
    [
        ({"reason": "bored"}, 400, "reason"),
        ({"amount": "0"}, 400, "amount"),
        ({"amount": "3999"}, 400, "amount"),
        ({"amount": "ten"}, 400, "amount"),
        ({"colour": "red"}, 400, "colour"),
    ],
)
async def test_bad_dispute_requests_change_nothing(
    private: Sandbox, http: aiohttp.ClientSession, form: dict[str, str], status: int, param: str
) -> None:
    session = await pay(private, http, "4242424242424242")
    got, body = await helper(private, http, f"/sessions/{session.id}/dispute", **form)
    assert (got, body["error"]["param"]) == (status, param)
    assert private.state.disputes == {}
    assert charge_of(private, session.id)["disputed"] is False


async def test_dispute_helpers_refuse_what_cannot_be_disputed(
    private: Sandbox, http: aiohttp.ClientSession
) -> None:
    unpaid = await private.client.v1.checkout.sessions.create_async(params=session_params())
    status, body = await helper(private, http, f"/sessions/{unpaid.id}/dispute")
    assert (status, body["error"]["type"]) == (400, "invalid_request_error")
    status, body = await helper(private, http, "/sessions/cs_test_nope/dispute")
    assert (status, body["error"]["code"]) == (404, "resource_missing")
    status, body = await helper(private, http, "/disputes/du_nope/close", outcome="won")
    assert (status, body["error"]["code"]) == (404, "resource_missing")
    paid = await pay(private, http, "4000000000000259")
    status, body = await helper(private, http, f"/sessions/{paid.id}/dispute")
    assert (status, body["error"]["code"]) == (400, "charge_disputed")
    [dispute] = private.state.disputes.values()
    status, body = await helper(private, http, f"/disputes/{dispute.id}/close", outcome="draw")
    assert (status, body["error"]["param"]) == (400, "outcome")
    assert dispute.status == "needs_response"


async def test_a_disputed_charge_cannot_be_refunded(
    private: Sandbox, http: aiohttp.ClientSession
) -> None:
    session = await pay(private, http, "4000000000000259")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await private.client.v1.refunds.create_async(
            params={"payment_intent": session.payment_intent}
        )
    assert caught.value.code == "charge_disputed"
    assert private.state.refunds() == []


async def test_disputes_are_listed_newest_first_and_filtered(
    private: Sandbox, http: aiohttp.ClientSession
) -> None:
    first = await pay(private, http, "4000000000000259")
    second = await pay(private, http, "4000000000002685")
    disputes = private.client.v1.disputes
    listed = await disputes.list_async()
    assert [d.reason for d in listed.data] == ["product_not_received", "fraudulent"]
    of_first = await disputes.list_async(params={"payment_intent": first.payment_intent})
    assert [d.payment_intent for d in of_first.data] == [first.payment_intent]
    of_charge = await disputes.list_async(params={"charge": listed.data[0].charge})
    assert [d.payment_intent for d in of_charge.data] == [second.payment_intent]
    page = await disputes.list_async(params={"limit": 1})
    assert (len(page.data), page.has_more) == (1, True)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await disputes.retrieve_async("du_missing")
    assert caught.value.http_status == 404
    async with http.get(f"{private.url}/v1/disputes") as response:
        assert response.status == 401  # the API needs a key, as Stripe's does
    async with http.get(f"{private.url}/v1/disputes?colour=red", headers=AUTH) as response:
        assert response.status == 400


async def test_a_dashboard_refund_reaches_the_shop_without_a_request(
    private: Sandbox, http: aiohttp.ClientSession
) -> None:
    session = await pay(private, http, "4242424242424242")
    path = f"/sessions/{session.id}/refund"
    status, first = await helper(private, http, path, amount="1000")
    assert (status, first["object"], first["amount"]) == (200, "refund", 1000)
    status, rest = await helper(private, http, path, reason="requested_by_customer")
    assert (status, rest["amount"], rest["reason"]) == (200, 2998, "requested_by_customer")
    refunded = events(private, "charge.refunded")
    assert [e["data"]["object"]["amount_refunded"] for e in refunded] == [1000, 3998]
    assert refunded[-1]["data"]["previous_attributes"] == {
        "amount_refunded": 1000,
        "refunded": False,
    }
    created = events(private, "refund.created")
    assert [e["data"]["object"]["id"] for e in created] == [first["id"], rest["id"]]
    for event in refunded + created:
        assert event["request"] == {"id": None, "idempotency_key": None}
    listed = await private.client.v1.refunds.list_async(
        params={"payment_intent": session.payment_intent}
    )
    assert [r.id for r in listed.data] == [rest["id"], first["id"]]
    status, body = await helper(private, http, path, amount="1")
    assert (status, body["error"]["code"]) == (400, "charge_already_refunded")
    await private.state.wait_idle(5)
    delivered = {r.event["type"] for r in private.receiver.received}
    assert {"charge.refunded", "refund.created"} <= delivered


@pytest.mark.parametrize(
    ("form", "param"), [({"amount": "-5"}, "amount"), ({"reason": "because"}, "reason")]
)
async def test_bad_dashboard_refunds_change_nothing(
    private: Sandbox, http: aiohttp.ClientSession, form: dict[str, str], param: str
) -> None:
    session = await pay(private, http, "4242424242424242")
    status, body = await helper(private, http, f"/sessions/{session.id}/refund", **form)
    assert (status, body["error"]["param"]) == (400, param)
    status, body = await helper(private, http, f"/sessions/{session.id}/refund", amount="4000")
    assert (status, body["error"]["param"]) == (400, "amount")
    assert private.state.refunds() == []
    assert events(private, "charge.refunded") == []


async def test_an_api_refund_emits_refund_created_naming_its_request(
    private: Sandbox, http: aiohttp.ClientSession
) -> None:
    session = await pay(private, http, "4242424242424242")
    refund = await private.client.v1.refunds.create_async(
        params={"payment_intent": session.payment_intent, "amount": 500},
        options={"idempotency_key": "refund-500"},
    )
    [charge_event] = events(private, "charge.refunded")
    [refund_event] = events(private, "refund.created")
    assert refund_event["data"]["object"]["id"] == refund.id
    assert refund_event["request"] == charge_event["request"]
    assert refund_event["request"]["idempotency_key"] == "refund-500"
    assert refund_event["request"]["id"].startswith("req_")


async def test_a_debit_can_be_disputed_and_the_events_page_shows_disputes(
    private: Sandbox, http: aiohttp.ClientSession
) -> None:
    sessions = private.client.v1.checkout.sessions
    session = await sessions.create_async(params=session_params())
    status, _ = await helper(
        private, http, f"/sessions/{session.id}/complete", payment_method="sepa_debit"
    )
    assert status == 200
    await helper(private, http, "/clock/advance", seconds="60")
    status, dispute = await helper(
        private, http, f"/sessions/{session.id}/dispute", reason="debit_not_authorized"
    )
    assert status == 200, dispute
    assert (dispute["payment_method_details"], dispute["network_reason_code"]) == (None, None)
    assert problems_any(dispute) == []
    for event in events(private, "charge.dispute."):
        assert problems_any(event) == []
    async with http.get(f"{private.url}/_sandbox/events") as response:
        page = await response.text()
    assert "charge.dispute.created" in page and dispute["id"] in page
