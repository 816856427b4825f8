"""Receipt polls over real HTTP: 204 while nothing changed, the news when something did."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from storefront.evidence import EventOutcome
from storefront.orders import Fulfilment, OrderStatus, timestamp
from storefront.receipts import order_version
from storefront.store import OrderGlance
from tests.live import LiveStack, buy, live_database_url, pay

SYNC_AFTER = 3.0


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveStack]:
    database = tmp_path_factory.mktemp("receipt-polls") / "shop.sqlite3"
    env = {"STOREFRONT_STATUS_SYNC_AFTER": str(SYNC_AFTER)}
    async with LiveStack(database, env, database_url=live_database_url(request)) as live:
        yield live


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def receipt(http: aiohttp.ClientSession, stack: LiveStack, token: str) -> str:
    async with http.get(f"{stack.shop_url}/orders/{token}") as response:
        assert response.status == 200
        return await response.text()


def poller(text: str) -> str | None:
    """The status URL the page's (or a fragment's) poller carries, if it polls."""
    found = re.search(r'<div id="order-poll"[^>]*hx-get="([^"]+)"', text)
    return html.unescape(found.group(1)) if found else None


def interval(text: str) -> int | None:
    found = re.search(r'hx-trigger="every (\d+)s"', text)
    return int(found.group(1)) if found else None


def refresh(text: str) -> int | None:
    found = re.search(r'<meta http-equiv="refresh" content="(\d+)">', text)
    return int(found.group(1)) if found else None


async def poll(http: aiohttp.ClientSession, stack: LiveStack, url: str) -> tuple[int, str]:
    async with http.get(stack.shop_url + url, headers={"HX-Request": "true"}) as response:
        assert response.headers["Cache-Control"] == "no-store"
        return response.status, await response.text()


async def hand_set(stack: LiveStack, token: str, status: OrderStatus, quiet_for: float) -> None:
    # A test-only write: the order as if it had stood still for ``quiet_for`` seconds.
    await stack.db.execute(
        "UPDATE orders SET status = ?, updated_at = ? WHERE token = ?",
        (status.value, timestamp(time.time() - quiet_for), token),
    )


async def test_an_unchanged_poll_is_204_with_no_body(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, _ = await buy(http, stack, "enamel-mug")
    page = await receipt(http, stack, token)
    url = poller(page)
    assert url is not None and "v=" in url and "every=2" in url
    assert interval(page) == 2 and refresh(page) == 2
    # The poller sits outside the live region, which holds only the status.
    region = page[page.index('aria-live="polite"') :]
    assert region.index('id="order-status"') < region.index("</div>") < region.index("order-poll")
    for _ in range(3):
        status, body = await poll(http, stack, url)
        assert (status, body) == (204, "")


async def test_a_changed_order_answers_the_new_fragment(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, pay_url = await buy(http, stack, "enamel-mug")
    url = poller(await receipt(http, stack, token))
    assert url is not None
    assert (await pay(http, pay_url)).status == 303
    await stack.wait_for_status(token, "paid")
    status, body = await poll(http, stack, url)
    assert status == 200
    # The live region's content, out of band; the totals too, now that they are Stripe's.
    assert '<section class="status status-paid" id="order-status" hx-swap-oob="true">' in body
    assert '<div class="order-totals" id="order-totals" hx-swap-oob="true">' in body
    assert "Paid" in body and "<html" not in body
    # Final: the new poller has no trigger, so polling stops; the page has no refresh.
    assert "order-poll" in body and poller(body) is None and interval(body) is None
    page = await receipt(http, stack, token)
    assert poller(page) is None and refresh(page) is None


async def test_a_poll_without_a_version_gets_the_whole_fragment(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, _ = await buy(http, stack, "enamel-mug")
    status, body = await poll(http, stack, f"/orders/{token}/status")
    assert status == 200 and "Confirming payment" in body and poller(body) is not None


async def test_a_page_from_before_the_poller_is_reloaded(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, _ = await buy(http, stack, "enamel-mug")
    # Such pages polled the status section itself, so htmx names it as the target.
    headers = {"HX-Request": "true", "HX-Target": "order-status"}
    async with http.get(f"{stack.shop_url}/orders/{token}/status", headers=headers) as response:
        assert response.status == 200
        assert response.headers["HX-Refresh"] == "true"


@pytest.mark.parametrize(
    ("status", "quiet_for", "every"),
    [
        (OrderStatus.PENDING, 0, 2),
        (OrderStatus.PENDING, 4 * 60, 2),
        (OrderStatus.PENDING, 6 * 60, 10),
        (OrderStatus.PENDING, 59 * 60, 10),
        (OrderStatus.PENDING, 61 * 60, 60),
        (OrderStatus.PENDING, 3 * 86400, 60),
        (OrderStatus.PROCESSING, 0, 2),
        (OrderStatus.PROCESSING, 2 * 60, 30),
        (OrderStatus.PROCESSING, 61 * 60, 300),
        (OrderStatus.PROCESSING, 3 * 86400, 300),
        (OrderStatus.PAID, 0, None),
        (OrderStatus.FAILED, 3 * 86400, None),
    ],
)
async def test_the_interval_follows_the_schedule_with_and_without_js(
    stack: LiveStack,
    http: aiohttp.ClientSession,
    status: OrderStatus,
    quiet_for: float,
    every: int | None,
) -> None:
    token, _ = await buy(http, stack, "enamel-mug")
    await hand_set(stack, token, status, quiet_for)
    page = await receipt(http, stack, token)
    assert interval(page) == every
    assert refresh(page) == every  # the no-JS refresh keeps the same schedule
    url = poller(page)
    if every is None:
        assert url is None
        return
    assert url is not None and f"every={every}" in url
    assert await poll(http, stack, url) == (204, "")


async def test_a_new_interval_alone_swaps_only_the_poller(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    token, _ = await buy(http, stack, "enamel-mug")
    await hand_set(stack, token, OrderStatus.PENDING, 4 * 60)
    url = poller(await receipt(http, stack, token))
    assert url is not None and "every=2" in url
    # Quiet for two more minutes: past the step, with the very same order.
    found = await stack.db.order_glance(token)
    assert found is not None
    quieter = timestamp(time.time() - 6 * 60)
    await stack.db.execute("UPDATE orders SET updated_at = ? WHERE token = ?", (quieter, token))
    url = url.replace(order_version(found), order_version(await glance(stack, token)))
    status, body = await poll(http, stack, url)
    assert status == 200 and interval(body) == 10
    # The live region is left alone: nothing it says has changed.
    assert "order-status" not in body and "order-totals" not in body
    next_url = poller(body)
    assert next_url is not None
    assert await poll(http, stack, next_url) == (204, "")


async def glance(stack: LiveStack, token: str) -> OrderGlance:
    found = await stack.db.order_glance(token)
    assert found is not None
    return found


async def paid_order(http: aiohttp.ClientSession, stack: LiveStack) -> str:
    token, pay_url = await buy(http, stack, "enamel-mug")
    assert (await pay(http, pay_url)).status == 303
    await stack.wait_for_status(token, "paid")
    return token


async def refund(stack: LiveStack, token: str, amount: int | None = None) -> None:
    """Apply a charge.refunded as the webhook would: part of the charge, or all of it."""
    order = await stack.order(token)
    charged = order["amount_paid"]
    amount = charged if amount is None else amount
    outcome = EventOutcome(
        OrderStatus.REFUNDED,
        payment_intent=order["payment_intent"],
        amount=charged,
        currency=order["currency"],
        amount_refunded=amount,
        partial=amount < charged,
    )
    await stack.db.apply_outcome(order["id"], outcome, "test")


Change = Callable[[LiveStack, str, int], Awaitable[object]]
CHANGES: dict[str, tuple[bool, Change, str]] = {
    # name: (starts paid, the write, what the receipt then says)
    "processing": (
        False,
        lambda s, t, i: s.db.transition(i, OrderStatus.PROCESSING, source="test"),
        "Payment processing",
    ),
    "paid": (False, lambda s, t, i: s.db.transition(i, OrderStatus.PAID, source="t"), "Paid"),
    "expired": (
        False,
        lambda s, t, i: s.db.transition(i, OrderStatus.EXPIRED, source="test"),
        "Checkout cancelled",
    ),
    "flagged": (False, lambda s, t, i: s.db.flag(i, "test reason"), "reviewing this order"),
    "flagged when paid": (True, lambda s, t, i: s.db.flag(i, "test reason"), "reviewing"),
    "partial refund": (True, lambda s, t, i: refund(s, t, 500), "of this order has been refunded"),
    "full refund": (True, lambda s, t, i: refund(s, t), "This order has been refunded"),
    "shipped": (
        True,
        lambda s, t, i: s.db.set_fulfilment(i, Fulfilment.SHIPPED, "Parcel 42"),
        "Shipped: Parcel 42",
    ),
    "delivered": (
        True,
        lambda s, t, i: s.db.set_fulfilment(i, Fulfilment.DELIVERED, None),
        "Delivered",
    ),
}


@pytest.mark.parametrize("kind", list(CHANGES))
async def test_the_version_moves_with_every_kind_of_change(
    stack: LiveStack, http: aiohttp.ClientSession, kind: str
) -> None:
    starts_paid, change, shown = CHANGES[kind]
    if starts_paid:
        token = await paid_order(http, stack)
    else:
        token, _ = await buy(http, stack, "enamel-mug")
    before = await glance(stack, token)
    every = "2" if not before.status.is_final else "None"
    url = f"/orders/{token}/status?v={order_version(before)}&every={every}"
    assert await poll(http, stack, url) == (204, "")
    await change(stack, token, before.id)
    after = await glance(stack, token)
    assert order_version(after) != order_version(before)
    status, body = await poll(http, stack, url)
    assert status == 200 and shown in body


async def test_an_aborted_checkout_moves_the_version(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    product = await stack.db.product_by_slug("enamel-mug")
    assert product is not None
    order = await stack.db.open_order(product.id, product.unit_amount, product.currency, None)
    before = await glance(stack, order.token)
    url = f"/orders/{order.token}/status?v={order_version(before)}&every=2"
    assert await poll(http, stack, url) == (204, "")
    assert await stack.db.abort_without_session(order.id, untouched_for=0, source="test")
    status, body = await poll(http, stack, url)
    assert status == 200 and "Checkout did not start" in body


async def test_an_unchanged_poll_still_asks_stripe_when_due(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    stats = stack.sandbox_state.stats
    token, pay_url = await buy(http, stack, "enamel-mug")
    url = poller(await receipt(http, stack, token))
    assert url is not None
    before = stats["api_requests"]
    assert await poll(http, stack, url) == (204, "")  # too fresh to ask
    assert stats["api_requests"] == before
    await asyncio.sleep(SYNC_AFTER + 0.1)
    # Due: Stripe is asked once; the session is still open, so nothing changed.
    assert await poll(http, stack, url) == (204, "")
    assert stats["api_requests"] == before + 1
    assert await poll(http, stack, url) == (204, "")
    assert stats["api_requests"] == before + 1
    # Paid meanwhile: the next poll that finds it shows it.
    assert (await pay(http, pay_url)).status == 303
    await stack.wait_for_status(token, "paid")
    status, body = await poll(http, stack, url)
    assert status == 200 and "Paid" in body
