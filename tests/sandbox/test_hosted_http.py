"""Paying on the hosted page with plain HTTP posts, as a browser without JavaScript would."""

from __future__ import annotations

import re
import time
from typing import Any

import aiohttp
import pytest
import stripe

from .support import CANCEL_URL, Sandbox, session_params

CARD = {"email": "shopper@example.com", "expiry": "12/34", "cvc": "123", "name": "Ada Shopper"}
# The card number is never echoed back into the form.
NUMBER_WITH_VALUE = re.compile(r'<input id="number"[^>]*value=')
SEPA_PARAMS = {"allowed_payment_method_types": ["card", "sepa_debit"]}


async def new_session(sandbox: Sandbox, **overrides: Any) -> stripe.checkout.Session:
    return await sandbox.client.v1.checkout.sessions.create_async(
        params=session_params(**overrides)
    )


async def post(
    http: aiohttp.ClientSession, url: str, data: dict[str, str]
) -> tuple[int, str, str | None]:
    async with http.post(url, data=data, allow_redirects=False) as response:
        return response.status, await response.text(), response.headers.get("Location")


async def pay_card(
    http: aiohttp.ClientSession, session: stripe.checkout.Session, number: str, **fields: str
) -> tuple[int, str, str | None]:
    return await post(http, f"{session.url}/card", {**CARD, "number": number, **fields})


async def test_page_shows_items_total_labels_and_back_link(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox, allowed_payment_method_types=["card"])
    async with http.get(session.url) as response:
        assert response.status == 200
        html = await response.text()
        csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "<script" not in html.lower()
    assert "Enamel mug" in html and "Holds tea" in html
    assert "€39.98" in html
    for field in ("email", "number", "expiry", "cvc", "name"):
        assert f'<label for="{field}"' in html
        assert f'id="{field}"' in html
    assert f'href="{CANCEL_URL}"' in html and "← Back" in html
    assert 'id="iban"' not in html  # card-only session


async def test_stylesheet_is_served(sandbox: Sandbox, http) -> None:
    async with http.get(f"{sandbox.url}/_sandbox/static/sandbox.css") as response:
        assert response.status == 200
        assert ".pay-button" in await response.text()


async def test_4242_pays_and_redirects_to_success_url(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox)
    status, _, location = await pay_card(http, session, "4242 4242 4242 4242")
    assert status == 303
    assert location == f"https://example.com/success?session_id={session.id}"
    paid = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert paid.payment_intent and paid.payment_intent.startswith("pi_")
    assert paid.customer_details is not None
    assert paid.customer_details.email == "shopper@example.com"
    assert paid.url is None
    await sandbox.receiver.wait_for(lambda: sandbox.receiver.about(session.id))
    event = sandbox.receiver.about(session.id)[0].event
    assert event["type"] == "checkout.session.completed"
    assert event["data"]["object"]["payment_status"] == "paid"
    assert event["data"]["object"]["metadata"] == {"order_id": "42"}


@pytest.mark.parametrize(
    ("number", "message", "status"),
    [
        ("4000 0000 0000 0002", "Your card was declined.", 402),
        ("4000000000009995", "Your card has insufficient funds.", 402),
        ("4242 4242 4242 4241", "Your card number is invalid.", 400),
        ("4111 1111 1111 1111", "Your card number is invalid.", 400),
    ],
    ids=["declined", "insufficient-funds", "luhn", "unknown-number"],
)
async def test_refused_cards_keep_the_session_open(
    sandbox: Sandbox, http, number: str, message: str, status: int
) -> None:
    session = await new_session(sandbox)
    got, html, _ = await pay_card(http, session, number)
    assert got == status
    assert message.replace("'", "&#39;") in html
    assert not NUMBER_WITH_VALUE.search(html)
    assert 'value="shopper@example.com"' in html and 'value="Ada Shopper"' in html
    await sandbox.state.wait_idle(5)
    still = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert still.status == "open"
    assert sandbox.receiver.about(session.id) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expiry": "01/20"}, "Your card's expiration date is in the past."),
        ({"expiry": "13"}, "Your card's expiration date is incomplete."),
        ({"cvc": "1"}, "Your card's security code is incomplete."),
        ({"cvc": ""}, "Your card's security code is incomplete."),
        ({"email": ""}, "Your email address is incomplete."),
        ({"email": "not-an-email"}, "Your email address is invalid."),
        ({"name": ""}, "Your name is incomplete."),
    ],
    ids=["past-expiry", "bad-expiry", "short-cvc", "no-cvc", "no-email", "bad-email", "no-name"],
)
async def test_form_errors_are_shown_and_nothing_is_charged(
    sandbox: Sandbox, http, fields: dict[str, str], message: str
) -> None:
    session = await new_session(sandbox)
    status, html, _ = await pay_card(http, session, "4242424242424242", **fields)
    assert status == 400
    assert message.replace("'", "&#39;") in html
    assert not NUMBER_WITH_VALUE.search(html)
    still = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert still.status == "open"


async def test_3155_completes_after_authentication(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox)
    status, _, location = await pay_card(http, session, "4000 0025 0000 3155")
    assert status == 303 and location == f"/c/pay/{session.id}/authenticate"
    async with http.get(f"{sandbox.url}{location}") as response:
        html = await response.text()
    assert "Complete authentication" in html and "Fail authentication" in html
    # While authentication is pending the payment page sends the shopper back to it.
    async with http.get(session.url, allow_redirects=False) as response:
        assert response.status == 303
    status, _, location = await post(
        http, f"{sandbox.url}/c/pay/{session.id}/authenticate", {"outcome": "complete"}
    )
    assert status == 303 and location.endswith(f"session_id={session.id}")
    paid = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert paid.payment_status == "paid"
    await sandbox.receiver.wait_for(
        lambda: sandbox.receiver.types_about(session.id) == ["checkout.session.completed"]
    )


async def test_3155_failed_authentication_returns_to_the_form(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox)
    await pay_card(http, session, "4000002500003155")
    status, html, _ = await post(
        http, f"{sandbox.url}/c/pay/{session.id}/authenticate", {"outcome": "fail"}
    )
    assert status == 402
    assert "We are unable to authenticate your payment method." in html
    await sandbox.state.wait_idle(5)
    still = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert still.status == "open"
    assert sandbox.receiver.about(session.id) == []
    # The shopper can then pay with another card.
    status, _, _ = await pay_card(http, session, "4242424242424242")
    assert status == 303


@pytest.mark.parametrize(
    ("iban", "settled_type", "final_status", "pi_status"),
    [
        (
            "DE89 3704 0044 0532 0130 00",
            "checkout.session.async_payment_succeeded",
            "paid",
            "succeeded",
        ),
        (
            "DE62370400440532013001",
            "checkout.session.async_payment_failed",
            "unpaid",
            "requires_payment_method",
        ),
    ],
    ids=["settles", "fails"],
)
async def test_bank_debit_completes_unpaid_then_settles(
    sandbox: Sandbox, http, iban: str, settled_type: str, final_status: str, pi_status: str
) -> None:
    session = await new_session(sandbox, **SEPA_PARAMS)
    async with http.get(session.url) as response:
        html = await response.text()
    assert '<label for="iban"' in html
    status, _, location = await post(
        http,
        f"{session.url}/bank",
        {"email": "shopper@example.com", "name": "Ada Shopper", "iban": iban},
    )
    assert status == 303 and location.endswith(session.id)
    completed = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert (completed.status, completed.payment_status) == ("complete", "unpaid")
    await sandbox.receiver.wait_for(lambda: len(sandbox.receiver.types_about(session.id)) == 2)
    types = sandbox.receiver.types_about(session.id)
    assert types == ["checkout.session.completed", settled_type]
    first = sandbox.receiver.about(session.id)[0].event["data"]["object"]
    assert first["payment_status"] == "unpaid"
    settled = await sandbox.client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["payment_intent"]}
    )
    assert settled.payment_status == final_status
    assert settled.payment_intent.status == pi_status


async def test_invalid_iban_is_refused(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox, **SEPA_PARAMS)
    status, html, _ = await post(
        http, f"{session.url}/bank", {"email": "a@example.com", "name": "A", "iban": "DE00123"}
    )
    assert status == 400 and "Your IBAN is invalid." in html


async def test_card_only_session_refuses_bank_debit(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox, allowed_payment_method_types=["card"])
    status, _, _ = await post(
        http,
        f"{session.url}/bank",
        {"email": "a@example.com", "name": "A", "iban": "DE89370400440532013000"},
    )
    assert status == 400
    still = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert still.status == "open"


async def test_expired_session_page_says_so_and_takes_no_money(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox)
    await sandbox.client.v1.checkout.sessions.expire_async(session.id)
    async with http.get(f"{sandbox.url}/c/pay/{session.id}") as response:
        assert "This checkout session has expired" in await response.text()
    status, html, _ = await pay_card(http, session, "4242424242424242")
    assert status == 409 and "has expired" in html
    after = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert (after.status, after.payment_status) == ("expired", "unpaid")


async def test_paid_session_page_refuses_a_second_payment(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox)
    await pay_card(http, session, "4242424242424242")
    async with http.get(f"{sandbox.url}/c/pay/{session.id}") as response:
        assert "already paid" in await response.text()
    status, _, _ = await pay_card(http, session, "4242424242424242")
    assert status == 409
    await sandbox.state.wait_idle(5)
    assert sandbox.receiver.types_about(session.id) == ["checkout.session.completed"]
    assert len([r for r in sandbox.receiver.about(session.id) if r.status == 200]) == 1


async def test_aging_a_session_expires_it_and_emits_the_event(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox)
    async with http.post(f"{sandbox.url}/_sandbox/sessions/{session.id}/age?seconds=90000") as r:
        assert (await r.json())["status"] == "expired"
    await sandbox.receiver.wait_for(
        lambda: sandbox.receiver.types_about(session.id) == ["checkout.session.expired"]
    )


async def test_the_sweeper_expires_sessions_when_their_time_comes(sandbox: Sandbox, http) -> None:
    session = await new_session(sandbox, expires_at=int(time.time()) + 1800)
    # Three seconds short of expiry (less the truncated second and the time the creation
    # took, which a busy machine can stretch past one): still open now, swept soon.
    async with http.post(f"{sandbox.url}/_sandbox/sessions/{session.id}/age?seconds=1797") as r:
        assert (await r.json())["status"] == "open"
    await sandbox.receiver.wait_for(
        lambda: sandbox.receiver.types_about(session.id) == ["checkout.session.expired"], 10
    )
    after = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    assert after.status == "expired"


async def test_unknown_session_page_is_404(sandbox: Sandbox, http) -> None:
    async with http.get(f"{sandbox.url}/c/pay/cs_test_nope") as response:
        assert response.status == 404


PAGE_FORMS = {
    "card": {**CARD, "number": "4242424242424242"},
    "bank": {"email": "a@example.com", "name": "A", "iban": "DE89370400440532013000"},
    "authenticate": {"outcome": "complete"},
    "address": {"name": "A", "country": "DE"},
    "promotion_code": {"code": "SAVE10"},
}


@pytest.mark.parametrize("form", sorted(PAGE_FORMS))
async def test_every_payment_page_form_is_404_unknown_and_409_once_closed(
    sandbox: Sandbox, http, form: str
) -> None:
    status, _, _ = await post(http, f"{sandbox.url}/c/pay/cs_test_nope/{form}", PAGE_FORMS[form])
    assert status == 404
    session = await new_session(sandbox, **SEPA_PARAMS)
    await sandbox.client.v1.checkout.sessions.expire_async(session.id)
    before = sandbox.state.sessions[session.id].to_stripe()
    status, html, _ = await post(http, f"{session.url}/{form}", PAGE_FORMS[form])
    assert status == 409 and "has expired" in html
    # The closed session is exactly as it was: no payment, address, rate or discount.
    assert sandbox.state.sessions[session.id].to_stripe() == before
    assert (before["status"], before["payment_status"]) == ("expired", "unpaid")
