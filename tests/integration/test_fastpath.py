"""The fast path answers exactly as Quart does, and leaves every other request to it."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from storefront import fastpath
from storefront.fastpath import FastPath
from storefront.orders import timestamp
from storefront.store import Store
from tests.shop import event, signed

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

NONCE = re.compile(r'name="attempt" value="([A-Za-z0-9_-]{16,64})"')


class Counting:
    """Wraps the ASGI app behind the fast path and counts the requests it got."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.http = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.http += 1
        await self.app(scope, receive, send)


@pytest.fixture
def behind(shop: Quart) -> Counting:
    """Count what reaches Quart from behind the fast path."""
    fast = shop.asgi_app
    assert isinstance(fast, FastPath)
    fast.app = Counting(fast.app)
    return fast.app


async def answer(client: QuartClient, path: str = "/", method: str = "GET") -> tuple:
    response = await client.open(path, method=method)
    body = await response.get_data(as_text=True)
    return response.status_code, sorted((k.lower(), v) for k, v in response.headers.items()), body


def without_nonces(body: str) -> str:
    return NONCE.sub('name="attempt" value="-"', body)


async def test_cached_catalog_is_sent_as_quart_sends_it(
    client: QuartClient, behind: Counting
) -> None:
    by_quart = await answer(client)
    assert behind.http == 1  # nothing cached yet: Quart rendered the page
    fast = await answer(client)
    assert behind.http == 1  # the second came from the cache, past Quart
    assert fast[:2] == by_quart[:2]
    assert without_nonces(fast[2]) == without_nonces(by_quart[2])
    assert dict(fast[1])["content-security-policy"].startswith("default-src 'self'")
    assert dict(fast[1])["content-length"] == str(len(fast[2].encode()))
    # Every Buy form still gets a nonce of its own.
    nonces = NONCE.findall(fast[2])
    assert len(nonces) == 2 and len(set(nonces + NONCE.findall(by_quart[2]))) == 4


async def test_cart_count_comes_from_the_cookie_as_in_quart(
    shop: Quart, client: QuartClient, behind: Counting
) -> None:
    await answer(client)
    response = await client.post("/cart/add/mug", form={"quantity": "2"})
    assert response.status_code == 303
    reached = behind.http
    fast = await answer(client)
    assert behind.http == reached
    assert '<span class="cart-count">2</span>' in fast[2]
    shop.extensions["catalog_page"].invalidate()
    by_quart = await answer(client)
    assert behind.http == reached + 1
    assert without_nonces(fast[2]) == without_nonces(by_quart[2])
    # A cookie that is not the shape of our tokens is no cart, on both paths.
    client.set_cookie("localhost", "cart", "not a token")
    assert '<span class="cart-count">0</span>' in (await answer(client))[2]


@pytest.mark.parametrize(
    ("method", "path"),
    [("HEAD", "/"), ("GET", "/?page=2"), ("POST", "/"), ("GET", "/cart"), ("GET", "/healthz")],
)
async def test_everything_else_goes_to_quart(
    client: QuartClient, behind: Counting, method: str, path: str
) -> None:
    await answer(client)
    before = behind.http
    status, headers, _ = await answer(client, path, method)
    assert behind.http == before + 1
    assert dict(headers)["x-frame-options"] == "DENY"
    assert status == {"POST": 405}.get(method, 200)


async def test_a_stale_page_is_rendered_by_quart(
    shop: Quart, client: QuartClient, behind: Counting
) -> None:
    await answer(client)
    shop.extensions["catalog_page"].invalidate()
    await answer(client)
    assert behind.http == 2


async def test_a_failing_cart_read_gets_quarts_error_page(
    client: QuartClient, behind: Counting, database: Path
) -> None:
    response = await client.post("/cart/add/mug", form={"quantity": "1"})
    assert response.status_code == 303
    await answer(client)
    with sqlite3.connect(database) as conn:
        conn.execute("ALTER TABLE cart_items RENAME TO cart_items_gone")
    before = behind.http
    status, headers, body = await answer(client)
    # The fast path declined; Quart answered with its own error page and headers.
    assert behind.http == before + 1
    assert status == 500
    assert "Something went wrong" in body
    assert dict(headers)["x-content-type-options"] == "nosniff"


# The webhook.


async def paid_order(client: QuartClient, db: Store, attempt: str) -> str:
    """A pending order's session id, opened through the checkout route."""
    response = await client.post("/checkout/mug", form={"attempt": attempt})
    assert response.status_code == 303
    row = await db.fetch_one(
        "SELECT stripe_session_id FROM orders WHERE checkout_attempt = ?", (attempt,)
    )
    assert row is not None
    return str(row["stripe_session_id"])


def completed(session_id: str, event_id: str) -> dict[str, Any]:
    return event(
        "checkout.session.completed",
        {
            "id": session_id,
            "object": "checkout.session",
            "status": "complete",
            "payment_status": "paid",
            "payment_intent": "pi_" + event_id,
            "customer_details": {"email": "shopper@example.com"},
            "amount_total": 1800,
            "currency": "eur",
        },
        event_id,
    )


async def deliver(client: QuartClient, body: str, header: str, *, via_quart: bool) -> tuple:
    # A query string sends the same delivery to the same view through Quart.
    path = "/webhook?via=quart" if via_quart else "/webhook"
    headers = {"Content-Type": "application/json", "Stripe-Signature": header}
    response = await client.post(path, data=body, headers=headers)
    text = await response.get_data(as_text=True)
    return response.status_code, sorted((k.lower(), v) for k, v in response.headers.items()), text


async def test_deliveries_are_answered_as_quart_answers_them(
    client: QuartClient, db: Store, behind: Counting
) -> None:
    sessions = [await paid_order(client, db, f"{'c' * 20}{i:02d}") for i in range(2)]
    answers = {}
    for via_quart, session_id in zip((False, True), sessions, strict=True):
        before = behind.http
        paid = signed(completed(session_id, f"evt_paid_{via_quart}"))
        nul = signed(event("checkout.session.completed", {"id": "cs_x"}, "evt_\x00"))
        cases = [
            ("applied", paid),
            ("duplicate", paid),
            ("bad signature", (paid[0], paid[1].replace("v1=", "v1=00"))),
            ("nul", nul),
            ("not an event", signed({"id": "evt_x"})),  # type: ignore[arg-type]
        ]
        for name, (body, header) in cases:
            answers[name, via_quart] = await deliver(client, body, header, via_quart=via_quart)
        assert behind.http == before + (len(cases) if via_quart else 0)
    for name in ("applied", "duplicate", "bad signature", "nul", "not an event"):
        assert answers[name, False] == answers[name, True], name
    assert answers["applied", False][0] == 200
    assert answers["applied", False][2] == '{"received":true,"result":"applied"}\n'
    assert answers["duplicate", False][2] == '{"received":true,"result":"duplicate"}\n'
    assert [a[0] for k, a in answers.items() if not k[1]] == [200, 200, 400, 400, 400]
    rows = await db.fetch_all("SELECT status FROM orders WHERE stripe_session_id IS NOT NULL")
    assert [r["status"] for r in rows] == ["paid", "paid"]


async def test_an_oversized_delivery_goes_to_quart_for_its_413(
    client: QuartClient, behind: Counting
) -> None:
    before = behind.http
    # Declared too long: Quart refuses it without the fast path reading anything.
    response = await client.post(
        "/webhook",
        data="x" * (300 * 1024),
        headers={"Stripe-Signature": "t=1,v1=00", "Content-Length": str(300 * 1024)},
    )
    assert response.status_code == 413
    # Undeclared: the fast path reads to the limit, then hands what it read to Quart.
    response = await client.post(
        "/webhook", data="x" * (300 * 1024), headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert response.status_code == 413
    assert behind.http == before + 2


async def test_an_unexpected_failure_is_answered_by_quart_with_the_body(
    client: QuartClient, db: Store, behind: Counting
) -> None:
    session_id = await paid_order(client, db, "d" * 22)
    body, header = signed(completed(session_id, "evt_broken"))
    await db.execute("ALTER TABLE order_events RENAME TO order_events_away")  # type: ignore[attr-defined]
    before = behind.http
    status, headers, page = await deliver(client, body, header, via_quart=False)
    # Quart got the whole body again: it verified the signature, then failed as the fast path did.
    assert behind.http == before + 1
    assert status == 500 and "Something went wrong" in page
    assert dict(headers)["x-frame-options"] == "DENY"
    assert await db.fetch_all("SELECT * FROM webhook_events") == []


def ends_answer(message: dict[str, Any]) -> bool:
    """Whether an ASGI message is the last piece of the answer."""
    return message["type"] == "http.response.body" and not message.get("more_body", False)


async def disconnect_once(answered: asyncio.Event) -> dict[str, Any]:
    """After the body, the connection stays open until the answer ends; then the client
    leaves, as a server reports it (Quart 0.23 waits for that before returning)."""
    await answered.wait()
    return {"type": "http.disconnect"}


async def test_a_slow_sender_goes_to_quart_with_what_was_read(
    shop: Quart, db: Store, behind: Counting, client: QuartClient
) -> None:
    session_id = await paid_order(client, db, "e" * 22)
    body, header = signed(completed(session_id, "evt_slow"))
    data = body.encode()
    pieces = [
        {"type": "http.request", "body": data[:10], "more_body": True},
        {"type": "http.request", "body": data[10:], "more_body": False},
    ]
    # The rest of the body arrives past the grace, however often receive is called.
    rest_at = asyncio.get_running_loop().time() + fastpath.BODY_GRACE + 0.3

    sent: list[dict[str, Any]] = []
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if len(pieces) == 1:
            await asyncio.sleep(rest_at - asyncio.get_running_loop().time())
        if not pieces:
            return await disconnect_once(answered)
        return pieces.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if ends_answer(message):
            answered.set()

    scope = {
        "type": "http",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
        "method": "POST",
        "scheme": "http",
        "path": "/webhook",
        "raw_path": b"/webhook",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"stripe-signature", header.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "extensions": {},
    }
    before = behind.http
    await shop.asgi_app(scope, receive, send)
    assert behind.http == before + 1
    assert sent[0]["status"] == 200
    row = await db.fetch_one(
        "SELECT status FROM orders WHERE stripe_session_id = ?", (session_id,)
    )
    assert row is not None and row["status"] == "paid"


# The receipt poll.

POLLER = re.compile(r'<div id="order-poll"[^>]*hx-get="([^"]+)"')


async def asgi_get(app: Any, url: str, headers: tuple = ()) -> tuple[int, list, bytes]:
    """One GET straight through an ASGI app: the status, raw headers and body it sends."""
    path, _, query = url.partition("?")
    scope = {
        "type": "http",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "extensions": {},
    }
    sent: list[dict[str, Any]] = []
    pieces = [{"type": "http.request", "body": b"", "more_body": False}]
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not pieces:
            return await disconnect_once(answered)
        return pieces.pop()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if ends_answer(message):
            answered.set()

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], sorted(sent[0]["headers"]), body


async def open_receipt(client: QuartClient, db: Store, attempt: str) -> tuple[str, str]:
    """A pending order opened through checkout: its token and its page's poll URL."""
    await paid_order(client, db, attempt)
    row = await db.fetch_one("SELECT token FROM orders WHERE checkout_attempt = ?", (attempt,))
    assert row is not None
    page = await (await client.get(f"/orders/{row['token']}")).get_data(as_text=True)
    found = POLLER.search(page)
    assert found is not None
    return str(row["token"]), found.group(1).replace("&amp;", "&")


async def test_an_unchanged_poll_is_answered_past_quart_as_quart_answers_it(
    shop: Quart, client: QuartClient, db: Store, behind: Counting
) -> None:
    _, url = await open_receipt(client, db, "f" * 22)
    assert re.fullmatch(r"/orders/[\w-]{32}/status\?v=[0-9a-f]{16}&every=2", url)
    reached = behind.http
    htmx = ((b"hx-request", b"true"), (b"hx-target", b"order-poll"))
    fast = await asgi_get(shop.asgi_app, url, htmx)
    assert behind.http == reached  # no request reached Quart
    by_quart = await asgi_get(behind, url, htmx)
    assert behind.http == reached + 1
    assert fast == by_quart  # status, every header and its value, the empty body
    assert fast[0] == 204 and fast[2] == b""
    assert (b"cache-control", b"no-store") in fast[1]
    assert (b"x-frame-options", b"DENY") in fast[1]
    # And over the test client too, as the page's poller sends it.
    response = await client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 204 and behind.http == reached + 1


async def test_every_other_poll_reaches_quart(
    shop: Quart, client: QuartClient, db: Store, behind: Counting
) -> None:
    token, url = await open_receipt(client, db, "g" * 22)
    version = re.search(r"v=([0-9a-f]{16})", url)
    assert version is not None
    other = "A" * 32
    cases = {
        # Quart answers these with the fragment, the poller, a reload or a 404.
        "changed order": (url.replace(version[1], "0" * 16), (), 200),
        "new interval": (url.replace("every=2", "every=10"), (), 200),
        "legacy page": (url, ((b"hx-target", b"order-status"),), 200),
        "unknown token": (url.replace(token, other), (), 404),
        "no version": (f"/orders/{token}/status", (), 200),
        "more parameters": (url + "&x=1", (), 204),
        "parameters reordered": (f"/orders/{token}/status?every=2&v={version[1]}", (), 204),
        "escaped": (url.replace("every=2", "every=%32"), (), 204),
        "malformed token": (url.replace(token, token[:20]), (), 404),
    }
    for name, (target, headers, status) in cases.items():
        before = behind.http
        answer = await asgi_get(shop.asgi_app, target, headers)
        assert behind.http == before + 1, name
        assert answer[0] == status, name
    assert (await asgi_get(shop.asgi_app, url))[0] == 204


async def test_a_poll_with_a_sync_due_reaches_quart_and_stripe(
    shop: Quart, client: QuartClient, db: Store, behind: Counting, fake_payments: Any
) -> None:
    token, url = await open_receipt(client, db, "h" * 22)
    # Quiet past the sync interval: the next poll asks Stripe about the session.
    quiet = shop.extensions["status_sync"].interval + 5
    await db.execute(
        "UPDATE orders SET updated_at = ? WHERE token = ?", (timestamp(time.time() - quiet), token)
    )
    page = await (await client.get(f"/orders/{token}")).get_data(as_text=True)
    found = POLLER.search(page)
    assert found is not None
    url = found.group(1).replace("&amp;", "&")
    asked, before = len(fake_payments.asked), behind.http
    assert (await asgi_get(shop.asgi_app, url))[0] == 204  # Stripe says it is still open
    assert behind.http == before + 1 and len(fake_payments.asked) == asked + 1
    # The slot is taken: the next poll is the fast path's again, and Stripe is not asked.
    assert (await asgi_get(shop.asgi_app, url))[0] == 204
    assert behind.http == before + 1 and len(fake_payments.asked) == asked + 1


async def test_a_failing_glance_gets_quarts_error_page(
    client: QuartClient, db: Store, behind: Counting
) -> None:
    _, url = await open_receipt(client, db, "i" * 22)
    await db.execute("ALTER TABLE orders RENAME TO orders_away")  # type: ignore[attr-defined]
    before = behind.http
    response = await client.get(url)
    assert behind.http == before + 1
    assert response.status_code == 500
