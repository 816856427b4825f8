"""A whole purchase over real HTTP: the shop, the real SDK, the sandbox, a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.live import LiveStack, buy, live_database_url, pay


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveStack]:
    database = tmp_path_factory.mktemp("purchase") / "shop.sqlite3"
    async with LiveStack(database, database_url=live_database_url(request)) as live:
        yield live


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_checkout_pay_webhook_paid(stack: LiveStack, http: aiohttp.ClientSession) -> None:
    token, pay_url = await buy(http, stack, "enamel-mug")
    assert pay_url.startswith(f"{stack.sandbox_url}/c/pay/cs_test_")
    order = await stack.order(token)
    assert (order["status"], order["amount_total"], order["currency"]) == ("pending", 1800, "eur")

    response = await pay(http, pay_url)
    assert response.status == 303
    session_id = order["stripe_session_id"]
    assert response.headers["Location"] == (
        f"{stack.shop_url}/orders/{token}?session_id={session_id}"
    )
    await stack.wait_for_status(token, "paid")
    events = await stack.db.fetch_all(
        "SELECT status, source FROM order_events WHERE order_id = ? ORDER BY id", (order["id"],)
    )
    assert [tuple(e) for e in events] == [("pending", "checkout"), ("paid", "webhook")]
    paid = await stack.order(token)
    assert paid["customer_email"] == "shopper@example.com"
    assert paid["payment_intent"].startswith("pi_")


async def test_the_success_page_confirms_with_stripe(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, pay_url = await buy(http, stack, "dotted-notebook")
    response = await pay(http, pay_url)
    async with http.get(response.headers["Location"]) as receipt:
        page = await receipt.text()
    assert receipt.status == 200
    # Paid either by the webhook or by the success page's own look at Stripe.
    assert "Paid" in page
    await stack.wait_for_status(token, "paid")


async def test_a_declined_card_leaves_the_order_pending(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, pay_url = await buy(http, stack, "canvas-tote")
    response = await pay(http, pay_url, number="4000 0000 0000 0002")
    # The hosted page shows the decline (402, like Stripe's card_declined); no redirect.
    assert response.status == 402
    assert (await stack.order(token))["status"] == "pending"


async def test_a_double_click_makes_one_order_and_one_session(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    form = {"attempt": "double-click-attempt-0001"}
    urls = []
    for _ in range(2):
        async with http.post(
            f"{stack.shop_url}/checkout/mountain-poster",
            data=form,
            headers={"HX-Request": "true"},
        ) as response:
            urls.append(response.headers["HX-Redirect"])
    assert urls[0] == urls[1]
    rows = await stack.db.fetch_all(
        "SELECT id FROM orders WHERE checkout_attempt = ?", (form["attempt"],)
    )
    assert len(rows) == 1


async def test_get_checkout_is_refused_and_creates_nothing(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    before = await stack.db.fetch_one("SELECT count(*) AS n FROM orders")
    async with http.get(f"{stack.shop_url}/checkout/enamel-mug") as response:
        assert response.status == 405
    after = await stack.db.fetch_one("SELECT count(*) AS n FROM orders")
    assert before is not None and after is not None and before["n"] == after["n"]


async def test_a_tampered_price_is_impossible(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{stack.shop_url}/checkout/enamel-mug",
        data={"attempt": "tampered-price-attempt", "unit_amount": "1", "amount": "1"},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        pay_url = response.headers["Location"]
    async with http.get(pay_url) as page:
        text = await page.text()
    assert "18.00" in text
    session_id = pay_url.rsplit("/", 1)[-1]
    row = await stack.db.fetch_one(
        "SELECT amount_total FROM orders WHERE stripe_session_id = ?", (session_id,)
    )
    assert row is not None and row["amount_total"] == 1800


async def test_forged_webhooks_change_nothing(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, _ = await buy(http, stack, "enamel-mug")
    order = await stack.order(token)
    body = (
        '{"id": "evt_forged", "type": "checkout.session.completed", "data": {"object": '
        f'{{"id": "{order["stripe_session_id"]}", "status": "complete",'
        ' "payment_status": "paid"}}}'
    )
    for header in (None, "t=1,v1=deadbeef", "garbage"):
        headers = {"Stripe-Signature": header} if header else {}
        async with http.post(f"{stack.shop_url}/webhook", data=body, headers=headers) as r:
            assert r.status == 400
    assert (await stack.order(token))["status"] == "pending"


async def test_cancel_expires_the_session_in_the_sandbox(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, pay_url = await buy(http, stack, "canvas-tote")
    async with http.get(f"{stack.shop_url}/orders/{token}/cancelled") as response:
        assert "Payment cancelled" in await response.text()
    assert (await stack.order(token))["status"] == "expired"
    # The session can no longer take money.
    response = await pay(http, pay_url)
    assert response.status == 409
