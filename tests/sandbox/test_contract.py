"""The API contract, through the official SDK; the same tests run against Stripe test mode."""

from __future__ import annotations

import time
import uuid

import pytest
import stripe

from .support import CANCEL_URL, SUCCESS_URL, Target, session_params


def new_key() -> str:
    return f"sandbox-suite-{uuid.uuid4()}"


async def test_create_returns_an_open_unpaid_session(target: Target) -> None:
    before = int(time.time())
    session = await target.client.v1.checkout.sessions.create_async(params=session_params())
    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.mode == "payment"
    assert session.livemode is False
    assert session.amount_subtotal == 3998
    assert session.amount_total == 3998
    assert session.currency == "eur"
    assert session.client_reference_id == "order-42"
    assert session.metadata.to_dict() == {"order_id": "42"}
    assert session.payment_intent is None
    assert session.customer_details is None
    assert session.success_url == SUCCESS_URL
    assert session.cancel_url == CANCEL_URL
    assert "card" in session.payment_method_types
    assert session.url
    assert before - 5 <= session.created <= int(time.time()) + 5
    # Without expires_at a session lives 24 hours.
    assert abs(session.expires_at - (session.created + 24 * 3600)) <= 5
    if target.sandbox:
        assert session.url == f"{target.sandbox.url}/c/pay/{session.id}"
        # Like an account with cards and SEPA Direct Debit enabled.
        assert session.payment_method_types == ["card", "sepa_debit"]


async def test_retrieve_returns_the_same_session(target: Target) -> None:
    created = await target.client.v1.checkout.sessions.create_async(params=session_params())
    fetched = await target.client.v1.checkout.sessions.retrieve_async(created.id)
    assert fetched.id == created.id
    assert fetched.amount_total == created.amount_total
    assert fetched.metadata.to_dict() == {"order_id": "42"}
    assert fetched.status == "open"


async def test_line_items_list_the_price_data(target: Target) -> None:
    created = await target.client.v1.checkout.sessions.create_async(params=session_params())
    items = await target.client.v1.checkout.sessions.line_items.list_async(created.id)
    assert items.object == "list"
    assert len(items.data) == 1
    item = items.data[0]
    assert isinstance(item, stripe.LineItem)
    assert item.quantity == 2
    assert item.amount_total == 3998
    assert item.description == "Enamel mug"
    assert item.currency == "eur"
    assert item.price is not None and item.price.unit_amount == 1999


async def test_expire_closes_an_open_session_once(target: Target) -> None:
    created = await target.client.v1.checkout.sessions.create_async(params=session_params())
    expired = await target.client.v1.checkout.sessions.expire_async(created.id)
    assert expired.status == "expired"
    assert expired.url is None
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await target.client.v1.checkout.sessions.expire_async(created.id)
    assert caught.value.http_status == 400


async def test_unknown_session_is_a_404(target: Target) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await target.client.v1.checkout.sessions.retrieve_async("cs_test_doesnotexist")
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"
    if target.sandbox:
        assert caught.value.param == "id"
        assert "No such checkout.session" in str(caught.value.user_message)


async def test_missing_line_items_names_the_param(target: Target) -> None:
    params = session_params()
    del params["line_items"]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await target.client.v1.checkout.sessions.create_async(params=params)
    assert caught.value.http_status == 400
    assert caught.value.param == "line_items"


async def test_missing_nested_param_names_its_path(target: Target) -> None:
    params = session_params()
    del params["line_items"][0]["price_data"]["currency"]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await target.client.v1.checkout.sessions.create_async(params=params)
    assert caught.value.param == "line_items[0][price_data][currency]"


async def test_unknown_parameter_is_refused(target: Target) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await target.client.v1.checkout.sessions.create_async(
            params=session_params(colour="red")  # type: ignore[arg-type]
        )
    assert caught.value.param == "colour"
    assert "Received unknown parameter: colour" in str(caught.value.user_message)


@pytest.mark.parametrize("offset", [10 * 60, 2 * 24 * 3600], ids=["too-soon", "too-late"])
async def test_expires_at_must_be_30_minutes_to_24_hours_ahead(
    target: Target, offset: int
) -> None:
    params = session_params(expires_at=int(time.time()) + offset)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await target.client.v1.checkout.sessions.create_async(params=params)
    assert caught.value.param == "expires_at"


async def test_expires_at_within_bounds_is_kept(target: Target) -> None:
    expires_at = int(time.time()) + 3600
    session = await target.client.v1.checkout.sessions.create_async(
        params=session_params(expires_at=expires_at)
    )
    assert session.expires_at == expires_at


async def test_same_idempotency_key_and_params_replays_the_answer(target: Target) -> None:
    key = new_key()
    first = await target.client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": key}
    )
    second = await target.client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": key}
    )
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"


async def test_same_idempotency_key_with_other_params_is_refused(target: Target) -> None:
    key = new_key()
    await target.client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": key}
    )
    with pytest.raises(stripe.IdempotencyError) as caught:
        await target.client.v1.checkout.sessions.create_async(
            params=session_params(client_reference_id="order-43"),
            options={"idempotency_key": key},
        )
    assert caught.value.http_status == 400


async def test_a_bad_api_key_raises_authentication_error(target: Target) -> None:
    base = target.sandbox.url if target.sandbox else None
    http_client = stripe.AIOHTTPClient()
    options = {"base_addresses": {"api": base}} if base else {}
    client = stripe.StripeClient(
        "sk_live_notarealkey0000000000", http_client=http_client, **options
    )
    try:
        with pytest.raises(stripe.AuthenticationError) as caught:
            await client.v1.checkout.sessions.retrieve_async("cs_test_whatever")
    finally:
        await http_client.close_async()
    assert caught.value.http_status == 401
