"""Money is never silently lost: the holes found by probing, each closed over real HTTP.

The shop and the sandbox on free ports, the real SDK, real SQLite. Every test
ends with the money invariant (tests/money.py) through the ``stacks`` fixture.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe

from storefront.fulfilment import ReconcileReport, reconcile
from storefront.orders import timestamp
from storefront.payments import StripePayments
from tests.live import SECRET, buy, pay
from tests.money import sandbox_sessions
from tests.reliability.conftest import Stack, Stacks, start

# The sandbox drops every delivery and never retries: webhooks are missed for good.
LOST = {"drop_first_rate": 1.0, "retry_schedule": ()}
NOTHING_CHARGED = "Nothing was charged"


async def run_reconciler(stack: Stack, **options: Any) -> ReconcileReport:
    """One pass of a reconciler of its own, as `storefront reconcile` runs beside the shop."""
    settings = dataclasses.replace(stack.shop_settings(), max_network_retries=0)
    payments = StripePayments.from_settings(settings)
    await payments.open()
    try:
        return await reconcile(stack.db, payments, **{"older_than": 0, **options})
    finally:
        await payments.close()


def session_for(stack: Stack, token: str) -> dict[str, Any]:
    [session] = [
        s for s in sandbox_sessions(stack.sandbox_state) if s["client_reference_id"] == token
    ]
    return dict(session)


async def post_checkout(http: aiohttp.ClientSession, stack: Stack, slug: str) -> tuple[int, str]:
    async with http.post(
        f"{stack.shop_url}/checkout/{slug}",
        data={"attempt": secrets.token_urlsafe(16)},
        headers={"HX-Request": "true"},
        allow_redirects=False,
    ) as response:
        return response.status, response.headers.get("HX-Redirect") or await response.text()


async def wait_for_checkout_in_flight(stack: Stack) -> None:
    """Wait until an order exists whose session is not back from Stripe yet."""
    for _ in range(500):
        if await stack.db.fetch_all("SELECT id FROM orders WHERE stripe_session_id IS NULL"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the checkout never opened its order")


async def sql(stack: Stack, statement: str, *params: Any) -> None:
    await stack.db.execute(statement, params)


async def timeline(stack: Stack, token: str) -> list[tuple[str, str, str | None]]:
    rows = await stack.db.fetch_all(
        "SELECT e.status, e.source, e.note FROM order_events e JOIN orders o"
        " ON o.id = e.order_id WHERE o.token = ? ORDER BY e.id",
        (token,),
    )
    return [(r["status"], r["source"], r["note"]) for r in rows]


async def page(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        assert response.status == 200
        return await response.text()


# -- 1. the paid-but-aborted race -------------------------------------------------


async def test_a_reconcile_during_a_slow_checkout_leaves_it_alone_and_the_payment_lands(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, latency_ms=2500)  # Stripe is slow to answer
    checkout = asyncio.create_task(buy(http, stack, "canvas-tote"))
    await wait_for_checkout_in_flight(stack)
    await asyncio.sleep(0.01)  # stale means untouched for longer than 0 s
    report = await run_reconciler(stack)
    assert (report.checked, report.aborted, report.in_flight) == (1, 0, 1)

    token, pay_url = await checkout
    assert (await pay(http, pay_url)).status == 303
    await stack.wait_for_status(token, "paid")
    receipt = await page(http, f"{stack.shop_url}/orders/{token}")
    assert "Paid" in receipt and NOTHING_CHARGED not in receipt


async def test_a_checkout_whose_order_was_aborted_meanwhile_expires_its_session(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, latency_ms=2500)
    checkout = asyncio.create_task(post_checkout(http, stack, "canvas-tote"))
    await wait_for_checkout_in_flight(stack)
    await asyncio.sleep(0.01)
    # A reconciler that believes no checkout is in flight (a crashed shop's order).
    report = await run_reconciler(stack, in_flight_for=0)
    assert report.aborted == 1

    status, body = await checkout
    assert status == 503 and "try again" in body
    [row] = await stack.db.fetch_all("SELECT token, status, stripe_session_id FROM orders")
    assert (row["status"], row["stripe_session_id"]) == ("aborted", None)
    session = session_for(stack, row["token"])
    assert session["status"] == "expired"  # nobody can pay it
    assert (await pay(http, f"{stack.sandbox_url}/c/pay/{session['id']}")).status != 303


@pytest.mark.parametrize(
    ("given_up_as", "knobs", "told_by"),
    [("aborted", {}, "webhook"), ("expired", LOST, "success page")],
    ids=["aborted-webhook", "expired-success-page"],
)
async def test_a_payment_for_an_order_we_gave_up_on_makes_it_paid_and_flagged(
    stacks: Stacks,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    given_up_as: str,
    knobs: dict[str, Any],
    told_by: str,
) -> None:
    stack = await start(stacks, tmp_path, **knobs)
    token, pay_url = await buy(http, stack, "canvas-tote")
    # How today's race (or a database of today's shop) leaves it: given up on, session open.
    await sql(stack, "UPDATE orders SET status = ? WHERE token = ?", given_up_as, token)
    response = await pay(http, pay_url)
    assert response.status == 303
    if told_by == "success page":
        await page(http, response.headers["Location"])
    await stack.wait_for_status(token, "paid")

    order = await stack.order(token)
    assert order["flagged_at"] is not None
    assert f"was {given_up_as}" in order["flag_reason"]
    assert (await timeline(stack, token))[-1] == (
        "paid",
        told_by,
        f"Stripe reports paid for an order that was {given_up_as}",
    )
    receipt = await page(http, f"{stack.shop_url}/orders/{token}")
    assert "Paid" in receipt and NOTHING_CHARGED not in receipt
    assert "reviewing" in receipt


# -- 2. a signed event is not trusted blindly ---------------------------------------


async def send(
    http: aiohttp.ClientSession, stack: Stack, event_type: str, obj: dict[str, Any]
) -> str:
    """POST a validly signed event to the shop; return the result it reports."""
    body = json.dumps(
        {"id": f"evt_{secrets.token_hex(8)}", "type": event_type, "data": {"object": obj}}
    )
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET, int(time.time()))
    async with http.post(
        f"{stack.shop_url}/webhook", data=body, headers={"Stripe-Signature": header}
    ) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["result"]


def paid_session(session_id: str, token: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "client_reference_id": token,
        "payment_intent": "pi_" + secrets.token_hex(8),
        "amount_total": 2200,
        "currency": "eur",
        **fields,
    }


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown session, order B's token", "names session cs_test_unknown"),
        ("amount_total=1 usd", "says 1 usd for an order of 2200 eur"),
        ("no amount at all", "says ? ? for an order of 2200 eur"),
    ],
)
async def test_a_signed_payment_that_does_not_match_the_order_flags_it_and_pays_nothing(
    stacks: Stacks,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    case: str,
    reason: str,
) -> None:
    stack = await start(stacks, tmp_path)
    token, pay_url = await buy(http, stack, "canvas-tote")  # order B: 22.00 EUR
    session_id = pay_url.rsplit("/", 1)[-1]
    obj = {
        "unknown session, order B's token": paid_session("cs_test_unknown", token),
        "amount_total=1 usd": paid_session(session_id, token, amount_total=1, currency="usd"),
        "no amount at all": paid_session(session_id, token, amount_total=None, currency=None),
    }[case]
    with caplog.at_level(logging.WARNING, logger="storefront.fulfilment"):
        assert await send(http, stack, "checkout.session.completed", obj) == "flagged"
    order = await stack.order(token)
    assert order["status"] == "pending"
    assert reason in order["flag_reason"]
    assert any(f"order_id={order['id']} flagged" in m and reason in m for m in caplog.messages)
    receipt = await page(http, f"{stack.shop_url}/orders/{token}")
    assert "Paid" not in receipt and "reviewing" in receipt
    assert await stack.db.fetch_one("SELECT 1 FROM webhook_events")  # recorded: no retries

    # The real payment still lands: B is paid, and stays flagged for a look.
    assert (await pay(http, pay_url)).status == 303
    await stack.wait_for_status(token, "paid")
    assert (await stack.order(token))["flagged_at"] is not None


async def test_a_refund_for_an_order_never_paid_flags_it_and_refunds_nothing(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path)
    token, _ = await buy(http, stack, "canvas-tote")
    charge = {
        "id": "ch_" + secrets.token_hex(8),
        "object": "charge",
        "payment_intent": "pi_" + secrets.token_hex(8),
        "refunded": True,
        "amount": 2200,
        "currency": "eur",
        "metadata": {"order_token": token},
    }
    assert await send(http, stack, "charge.refunded", charge) == "flagged"
    order = await stack.order(token)
    assert order["status"] == "pending"
    assert "refunds an order that was never paid" in order["flag_reason"]


async def test_a_refund_of_another_amount_flags_a_paid_order_and_leaves_it_paid(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path)
    token, pay_url = await buy(http, stack, "canvas-tote")
    await pay(http, pay_url)
    await stack.wait_for_status(token, "paid")
    intent = (await stack.order(token))["payment_intent"]
    charge = {"id": "ch_x", "payment_intent": intent, "refunded": True, "amount": 1}
    assert await send(http, stack, "charge.refunded", charge | {"currency": "eur"}) == "flagged"
    order = await stack.order(token)
    assert order["status"] == "paid" and "says 1 eur" in order["flag_reason"]


async def test_the_success_page_checks_the_sessions_amount_too(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, **LOST)
    token, pay_url = await buy(http, stack, "canvas-tote")
    # The order and its session disagree (a price edited in the database by hand).
    await sql(stack, "UPDATE orders SET amount_total = 999 WHERE token = ?", token)
    response = await pay(http, pay_url)
    receipt = await page(http, response.headers["Location"])
    order = await stack.order(token)
    assert order["status"] == "pending"
    assert (
        (order["flag_reason"])
        == "success page: paid refused: says 2200 eur for an order of 999 eur"
    )
    assert "reviewing" in receipt and NOTHING_CHARGED not in receipt


# -- 4. a session Stripe does not know ----------------------------------------------


async def test_an_order_whose_session_stripe_does_not_know_is_settled_once(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, **LOST)
    token, _ = await buy(http, stack, "canvas-tote")
    await sql(stack, "UPDATE orders SET stripe_session_id = 'cs_test_gone' WHERE token = ?", token)
    # Stripe down: never settle on an outage.
    stack.sandbox_state.update_settings(failure_rate=1.0)
    report = await run_reconciler(stack)
    assert report.checked == 1 and (await stack.order(token))["status"] == "pending"

    stack.sandbox_state.update_settings(failure_rate=0.0)
    report = await run_reconciler(stack)
    assert (report.checked, report.changed) == (1, 1)
    assert (await stack.order(token))["status"] == "expired"
    assert (await timeline(stack, token))[-1] == (
        "expired",
        "reconcile",
        "Stripe has no session cs_test_gone",
    )
    assert (await run_reconciler(stack)).checked == 0  # not re-checked on every pass


# -- 5. the session's lifetime ------------------------------------------------------


@pytest.mark.parametrize("lifetime", [None, 7200])
async def test_sessions_carry_the_configured_expires_at_and_the_order_stores_it(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession, lifetime: int | None
) -> None:
    shop = {} if lifetime is None else {"checkout_expires_after": lifetime}
    stack = await start(stacks, tmp_path, shop=shop)
    before = int(time.time())
    token, _ = await buy(http, stack, "canvas-tote")
    session = session_for(stack, token)
    expected = 3600 if lifetime is None else lifetime
    assert session["expires_at"] == (await stack.order(token))["expires_at"]
    assert before + expected <= session["expires_at"] <= int(time.time()) + expected


async def test_the_reconciler_never_expires_a_session_before_its_expires_at(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, **LOST)
    token, _ = await buy(http, stack, "canvas-tote")
    report = await run_reconciler(stack)
    assert (report.checked, report.expired) == (1, 0)
    assert session_for(stack, token)["status"] == "open"
    # Its expires_at has passed (Stripe's sweep lags): now it is expired.
    await sql(
        stack, "UPDATE orders SET expires_at = ? WHERE token = ?", int(time.time()) - 1, token
    )
    report = await run_reconciler(stack)
    assert report.expired == 1
    assert session_for(stack, token)["status"] == "expired"
    assert (await stack.order(token))["status"] == "expired"


async def test_a_second_click_restarts_the_in_flight_clock(shop: Any) -> None:
    # The form's second submit reuses the pending order and calls Stripe again:
    # the reconciler counts the time in flight from that call, not the first.

    db = shop.extensions["db"]
    first = await db.open_order(1, 1800, "eur", "same-form-000000000000", 5000)
    await db.execute("UPDATE orders SET updated_at = ?", (timestamp(time.time() - 3600),))
    again = await db.open_order(1, 1800, "eur", "same-form-000000000000", 9000)
    # The same expires_at as the first call: Stripe's idempotency key replays the session.
    assert again.id == first.id and again.expires_at == first.expires_at == 5000
    await asyncio.sleep(0.01)  # stale means untouched for longer than 0 s
    report = await reconcile(db, shop.extensions["payments"], older_than=0, in_flight_for=60)
    assert (report.aborted, report.in_flight) == (0, 1)
    await db.execute("UPDATE orders SET updated_at = ?", (timestamp(time.time() - 61),))
    report = await reconcile(db, shop.extensions["payments"], older_than=0, in_flight_for=60)
    assert report.aborted == 1


async def test_stripe_unreachable_while_vouching_for_a_refund_is_503_then_applied(
    shop: Any, fake_payments: Any
) -> None:
    from tests.shop import event, signed

    client = shop.test_client()
    response = await client.post("/checkout/mug", form={"attempt": "v" * 22})
    session_id = response.headers["Location"].rsplit("/", 1)[-1]
    fake_payments.complete(session_id)  # paid at Stripe; the completed event is late
    session = fake_payments.sessions[session_id]
    charge = {
        "id": "ch_v",
        "payment_intent": session.payment_intent,
        "refunded": True,
        "amount": 1800,
        "currency": "eur",
        # Our token: the order is found at once, but it is not paid here yet.
        "metadata": {"order_token": session.client_reference_id},
    }
    body, header = signed(event("charge.refunded", charge, "evt_v"))
    headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
    fake_payments.fail = True
    assert (await client.post("/webhook", data=body, headers=headers)).status_code == 503
    assert await shop.extensions["db"].fetch_all("SELECT * FROM webhook_events") == []
    fake_payments.fail = False
    retry = await client.post("/webhook", data=body, headers=headers)
    assert (await retry.get_json())["result"] == "applied"
    row = await shop.extensions["db"].fetch_one("SELECT status, flagged_at FROM orders")
    assert row is not None and (row["status"], row["flagged_at"]) == ("refunded", None)
