"""Cancel, missed webhooks, reconciliation, polls, delayed methods, refunds, Stripe down.

All over real HTTP: the shop and the sandbox on free ports, the real SDK, real SQLite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe

from storefront import orders
from storefront.config import SANDBOX_API_KEY
from storefront.fulfilment import reconcile
from storefront.payments import STRIPE_API_VERSION
from storefront.serving import free_port
from tests.fakes import FakePayments
from tests.live import CARD, SECRET, buy, pay
from tests.reliability.conftest import Stack, Stacks, start

# The sandbox drops every delivery and never retries: webhooks are missed for good.
LOST = {"drop_first_rate": 1.0, "retry_schedule": ()}
STOREFRONT = Path(sys.executable).parent / "storefront"


async def sources(stack: Stack, token: str) -> list[tuple[str, str]]:
    found = await stack.db.order_with_timeline(token)
    assert found is not None
    return [(e.status.value, e.source) for e in found[1]]


def sandbox_session(stack: Stack, pay_url: str) -> dict[str, Any]:
    return stack.sandbox_state.sessions[pay_url.rsplit("/", 1)[-1]].to_stripe()


async def test_cancel_after_paying_keeps_the_payment(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, **LOST)
    token, pay_url = await buy(http, stack, "enamel-mug")
    assert (await pay(http, pay_url)).status == 303
    # Back through cancel_url (another tab): the expire is refused, Stripe says paid.
    async with http.get(f"{stack.shop_url}/orders/{token}/cancelled") as response:
        assert response.status == 200
    assert (await stack.order(token))["status"] == "paid"
    assert sandbox_session(stack, pay_url)["status"] == "complete"
    assert await sources(stack, token) == [("pending", "checkout"), ("paid", "cancel page")]


async def test_cancel_expires_the_open_session_so_it_cannot_be_paid(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, **LOST)
    token, pay_url = await buy(http, stack, "canvas-tote")
    async with http.get(f"{stack.shop_url}/orders/{token}/cancelled") as response:
        assert response.status == 200
    assert sandbox_session(stack, pay_url)["status"] == "expired"
    assert (await pay(http, pay_url)).status == 409  # expired: it refuses the card
    # A second visit changes nothing more.
    async with http.get(f"{stack.shop_url}/orders/{token}/cancelled") as response:
        assert response.status == 200
    assert await sources(stack, token) == [("pending", "checkout"), ("expired", "cancel page")]


async def test_reconcile_command_applies_missed_webhooks_and_expires_abandoned(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, **LOST)
    paid_token, paid_url = await buy(http, stack, "enamel-mug")
    await pay(http, paid_url)
    abandoned_token, abandoned_url = await buy(http, stack, "canvas-tote")
    # An order the shop opened just before dying, without a session, long ago;
    # and one whose checkout call may still be waiting on Stripe.
    stranded = await stack.db.open_order(1, 1800, "eur", None)
    in_flight = await stack.db.open_order(1, 1800, "eur", None)
    await backdate(stack, stranded.token, updated_at_seconds=3600)
    # The abandoned checkout's session has outlived its expires_at.
    await backdate(stack, abandoned_token, expires_at_seconds=3600 + 60)
    await asyncio.sleep(0.05)

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "STOREFRONT_"))},
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_API_BASE": stack.sandbox_url,
        "STOREFRONT_DATABASE": str(stack.database),
        "STOREFRONT_DATABASE_URL": stack.database_url or "",
    }
    proc = await asyncio.create_subprocess_exec(
        str(STOREFRONT),
        "reconcile",
        "--older-than",
        "0",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await proc.communicate())[0].decode()
    assert proc.returncode == 0, output
    assert "checked 4 open orders: 1 changed, 1 expired, 1 aborted" in output

    assert await sources(stack, paid_token) == [("pending", "checkout"), ("paid", "reconcile")]
    assert (await stack.order(abandoned_token))["status"] == "expired"
    assert sandbox_session(stack, abandoned_url)["status"] == "expired"
    order = await stack.db.order_by_id(stranded.id)
    assert order is not None and order.status is orders.OrderStatus.ABORTED
    order = await stack.db.order_by_id(in_flight.id)
    assert order is not None and order.status is orders.OrderStatus.PENDING


async def backdate(
    stack: Stack, token: str, *, updated_at_seconds: int = 0, expires_at_seconds: int = 0
) -> None:
    """Move an order's clocks into the past, as if time had passed."""

    row = await stack.db.fetch_one("SELECT updated_at FROM orders WHERE token = ?", (token,))
    assert row is not None
    # Backend-neutral: the new text is computed here, in the shop's own timestamp format.
    updated = dt.datetime.strptime(row["updated_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    at = updated.replace(tzinfo=dt.UTC).timestamp() - updated_at_seconds
    await stack.db.execute(
        "UPDATE orders SET updated_at = ?, expires_at = expires_at - ? WHERE token = ?",
        (orders.timestamp(at), expires_at_seconds, token),
    )


async def age_at_stripe(
    http: aiohttp.ClientSession, stack: Stack, pay_url: str, seconds: int
) -> None:
    """Move a sandbox session's clock back; it expires there if that makes it due."""
    session_id = pay_url.rsplit("/", 1)[-1]
    url = f"{stack.sandbox_url}/_sandbox/sessions/{session_id}/age?seconds={seconds}"
    async with http.post(url) as response:
        assert response.status == 200, await response.text()


async def test_the_running_shop_reconciles_on_its_own(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    shop = {"reconcile_interval": 0.2, "reconcile_after": 1.0}
    stack = await start(stacks, tmp_path, shop=shop, **LOST)
    paid_token, paid_url = await buy(http, stack, "enamel-mug")
    await pay(http, paid_url)
    abandoned_token, abandoned_url = await buy(http, stack, "canvas-tote")
    await stack.wait_for_status(paid_token, "paid", within=5)
    # Open and well inside its lifetime: the reconciler leaves it to the shopper.
    await asyncio.sleep(1.5)
    assert (await stack.order(abandoned_token))["status"] == "pending"
    assert sandbox_session(stack, abandoned_url)["status"] == "open"
    # Stripe expires it at expires_at; its event is lost, the reconciler syncs it.
    await age_at_stripe(http, stack, abandoned_url, 7200)
    await stack.wait_for_status(abandoned_token, "expired", within=5)
    assert await sources(stack, paid_token) == [("pending", "checkout"), ("paid", "reconcile")]
    assert await sources(stack, abandoned_token) == [
        ("pending", "checkout"),
        ("expired", "reconcile"),
    ]


async def test_reconcile_reaches_orders_behind_a_page_of_long_processing_ones(
    shop: Any, fake_payments: FakePayments
) -> None:
    db = shop.extensions["db"]
    client = shop.test_client()
    session_ids = []
    for i in range(5):
        response = await client.post("/checkout/mug", form={"attempt": f"attempt-{i:016d}"})
        assert response.status_code == 303
        session_ids.append(response.headers["Location"].rsplit("/", 1)[-1])
    for session_id in session_ids[:4]:  # bank debits, settling for days
        fake_payments.complete(session_id, payment_status="unpaid")
    await reconcile(db, fake_payments, older_than=0, batch=2, expire_abandoned=False)
    fake_payments.complete(session_ids[4])  # paid; its webhook never came
    await asyncio.sleep(0.01)
    report = await reconcile(db, fake_payments, older_than=0, batch=2)
    assert report.checked == 5 and report.changed == 1
    row = await db.fetch_one(
        "SELECT status FROM orders WHERE stripe_session_id = ?", (session_ids[4],)
    )
    assert row is not None and row["status"] == "paid"


async def test_a_status_poll_asks_stripe_rarely_and_applies_the_outcome(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    # The interval is wide enough that each burst of polls ends well inside it even
    # on a loaded machine (a burst outlasting it would rightly ask Stripe again).
    interval = 2.0
    stack = await start(stacks, tmp_path, shop={"status_sync_after": interval}, **LOST)
    stats = stack.sandbox_state.stats
    token, pay_url = await buy(http, stack, "enamel-mug")
    status_url = f"{stack.shop_url}/orders/{token}/status"

    async def polls(n: int) -> None:
        async def one() -> None:
            async with http.get(status_url) as response:
                assert response.status == 200
                await response.read()

        await asyncio.gather(*(one() for _ in range(n)))

    before = stats["api_requests"]
    await polls(20)  # the order is too fresh: nobody asks Stripe
    assert stats["api_requests"] == before
    await asyncio.sleep(interval + 0.1)
    await polls(50)  # fifty polls at once: one look at Stripe
    assert stats["api_requests"] == before + 1
    await polls(20)  # within the interval: no more
    assert stats["api_requests"] == before + 1

    await pay(http, pay_url)  # paid, but the webhook is lost
    await asyncio.sleep(interval + 0.1)
    await polls(10)
    assert stats["api_requests"] == before + 2
    assert await sources(stack, token) == [("pending", "checkout"), ("paid", "status poll")]
    await polls(10)  # final: polls are plain reads again
    assert stats["api_requests"] == before + 2


async def pay_by_debit(http: aiohttp.ClientSession, pay_url: str, iban: str) -> int:
    form = {"email": CARD["email"], "name": CARD["name"], "iban": iban}
    async with http.post(f"{pay_url}/bank", data=form, allow_redirects=False) as response:
        return response.status


@pytest.mark.parametrize(
    ("iban", "final"),
    [("DE89370400440532013000", "paid"), ("DE62370400440532013001", "failed")],
    ids=["settles", "fails"],
)
async def test_a_delayed_payment_goes_through_processing(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession, iban: str, final: str
) -> None:
    stack = await start(
        stacks,
        tmp_path,
        shop={"allowed_payment_methods": ("card", "sepa_debit")},
        async_payment_delay=0.3,
    )
    token, pay_url = await buy(http, stack, "enamel-mug")
    assert sandbox_session(stack, pay_url)["payment_method_types"] == ["card", "sepa_debit"]
    assert await pay_by_debit(http, pay_url, iban) == 303
    await stack.wait_for_status(token, "processing")
    await stack.wait_for_status(token, final)
    assert await sources(stack, token) == [
        ("pending", "checkout"),
        ("processing", "webhook"),
        (final, "webhook"),
    ]


async def test_allowed_payment_methods_are_sent_only_when_configured(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    unset = await start(stacks, tmp_path)
    _, pay_url = await buy(http, unset, "enamel-mug")
    # Unset: Stripe (here the sandbox) offers its own default methods for eur.
    assert sandbox_session(unset, pay_url)["payment_method_types"] == ["card", "sepa_debit"]

    # The field is left out when the create call did not set it.
    assert "allowed_payment_method_types" not in sandbox_session(unset, pay_url)

    cards_only = await start(stacks, tmp_path, shop={"allowed_payment_methods": ("card",)})
    _, pay_url = await buy(http, cards_only, "enamel-mug")
    session = sandbox_session(cards_only, pay_url)
    assert session["allowed_payment_method_types"] == ["card"]
    assert session["payment_method_types"] == ["card"]
    assert await pay_by_debit(http, pay_url, "DE89370400440532013000") == 400


async def refund(http: aiohttp.ClientSession, stack: Stack, payment_intent: str) -> None:
    async with http.post(
        f"{stack.sandbox_url}/v1/refunds",
        data={"payment_intent": payment_intent},
        # The sandbox runs in strict pinned-version mode: plain HTTP must say its version too.
        headers={
            "Authorization": f"Bearer {SANDBOX_API_KEY}",
            "Stripe-Version": STRIPE_API_VERSION,
        },
    ) as response:
        assert response.status == 200, await response.text()


async def test_a_refund_in_stripe_refunds_the_order(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path)
    token, pay_url = await buy(http, stack, "enamel-mug")
    await pay(http, pay_url)
    await stack.wait_for_status(token, "paid")
    await refund(http, stack, sandbox_session(stack, pay_url)["payment_intent"])
    await stack.wait_for_status(token, "refunded")
    assert [s for s, _ in await sources(stack, token)] == ["pending", "paid", "refunded"]


def signed_event(event_type: str, obj: dict[str, Any], event_id: str) -> tuple[bytes, str]:
    body = json.dumps({"id": event_id, "type": event_type, "data": {"object": obj}})
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET, int(time.time()))
    return body.encode(), header


async def test_a_refund_overtaking_its_payment_finds_the_order_through_stripe(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, **LOST)
    token, pay_url = await buy(http, stack, "enamel-mug")
    await pay(http, pay_url)
    intent = sandbox_session(stack, pay_url)["payment_intent"]
    assert (await stack.order(token))["payment_intent"] is None  # completed never arrived
    # A charge without our metadata: only Stripe can say which session made it.
    charge = {
        "id": "ch_x",
        "object": "charge",
        "payment_intent": intent,
        "refunded": True,
        "amount": 1800,
        "currency": "eur",
    }
    for event_id, obj, result in [
        ("evt_refund", charge, "applied"),
        ("evt_other", {**charge, "payment_intent": "pi_not_ours"}, "ignored"),
    ]:
        body, header = signed_event("charge.refunded", obj, event_id)
        async with http.post(
            f"{stack.shop_url}/webhook", data=body, headers={"Stripe-Signature": header}
        ) as response:
            assert response.status == 200
            assert (await response.json())["result"] == result
    assert (await stack.order(token))["status"] == "refunded"


async def test_stripe_unreachable_during_the_refund_look_up_is_503_then_applied(
    shop: Any, fake_payments: FakePayments
) -> None:
    from tests.shop import event, signed

    client = shop.test_client()
    response = await client.post("/checkout/mug", form={"attempt": "r" * 22})
    session_id = response.headers["Location"].rsplit("/", 1)[-1]
    fake_payments.complete(session_id)
    charge = {
        "id": "ch_1",
        "payment_intent": f"pi_{session_id}",
        "refunded": True,
        "amount": 1800,
        "currency": "eur",
    }
    body, header = signed(event("charge.refunded", charge, "evt_r"))
    headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
    fake_payments.fail = True
    assert (await client.post("/webhook", data=body, headers=headers)).status_code == 503
    assert await shop.extensions["db"].fetch_all("SELECT * FROM webhook_events") == []
    fake_payments.fail = False
    retry = await client.post("/webhook", data=body, headers=headers)
    assert (await retry.get_json())["result"] == "applied"


@pytest.mark.parametrize("fault", ["down", "5xx"])
async def test_stripe_failing_at_checkout_says_try_again_and_charges_nothing(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession, fault: str
) -> None:
    if fault == "down":
        shop: dict[str, Any] = {"api_base": f"http://127.0.0.1:{free_port()}"}
        stack = await start(stacks, tmp_path, shop={**shop, "max_network_retries": 1})
    else:
        stack = await start(stacks, tmp_path, shop={"max_network_retries": 1}, failure_rate=1.0)
    for headers in ({"HX-Request": "true"}, {}):
        async with http.post(
            f"{stack.shop_url}/checkout/enamel-mug",
            data={"attempt": f"fault-{fault}-{len(headers)}-000000"},
            headers=headers,
            allow_redirects=False,
        ) as response:
            assert response.status == 503
            page = await response.text()
        assert "try again" in page and "Traceback" not in page
        assert ("<html" in page) is (not headers)  # a fragment for htmx, a page without
    rows = await stack.db.fetch_all("SELECT status FROM orders")
    assert [r["status"] for r in rows] == ["aborted", "aborted"]
    assert stack.sandbox_state.sessions == {}


async def test_a_double_submit_in_flight_makes_one_order_and_one_session(
    stacks: Stacks, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = await start(stacks, tmp_path, latency_ms=100)

    async def submit() -> str:
        async with http.post(
            f"{stack.shop_url}/checkout/dotted-notebook",
            data={"attempt": "same-form-0000000000"},
            headers={"HX-Request": "true"},
        ) as response:
            assert response.status == 204
            return response.headers["HX-Redirect"]

    urls = await asyncio.gather(*(submit() for _ in range(5)))
    assert len(set(urls)) == 1
    assert len(await stack.db.fetch_all("SELECT id FROM orders")) == 1
    assert len(stack.sandbox_state.sessions) == 1
