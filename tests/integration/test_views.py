"""The shop's pages and routes through Quart's test client, on a real SQLite file.

Payments are a hand-written fake of our own gateway; the real SDK against
the sandbox is exercised in test_purchase.py.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from quart import Quart
from quart.testing import QuartClient

from storefront import create_app
from storefront.store.sqlite import SQLiteStore
from tests.fakes import FakePayments
from tests.headers import parse_csp
from tests.shop import event, make_settings, seed, signed

HX = {"HX-Request": "true"}
ATTEMPT = "a" * 22


async def count(db: SQLiteStore, table: str) -> int:
    row = await db.fetch_one(f"SELECT count(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def test_catalog_lists_active_products_with_buy_forms(client: QuartClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    assert "Mug" in page and "€18.00" in page
    assert "Poster" in page and "$35.00" in page
    assert "Retired" not in page
    assert re.search(r'method="post"\s+action="/checkout/mug"', page)
    assert 'hx-post="/checkout/mug"' in page
    assert "htmx.min.js" in page


async def test_htmx_checkout_answers_hx_redirect(
    client: QuartClient, fake_payments: FakePayments, db: SQLiteStore
) -> None:
    response = await client.post("/checkout/mug", form={"attempt": ATTEMPT}, headers=HX)
    assert response.status_code == 204
    session = next(iter(fake_payments.sessions.values()))
    assert response.headers["HX-Redirect"] == session.url
    order = await db.fetch_one("SELECT * FROM orders")
    assert order is not None
    assert (order["status"], order["amount_total"], order["currency"]) == ("pending", 1800, "eur")
    assert order["stripe_session_id"] == session.id
    request = fake_payments.requests[0]
    assert request.unit_amount == 1800 and request.currency == "eur"
    assert request.success_url.endswith(
        f"/orders/{order['token']}?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert request.idempotency_key.endswith(order["token"])


async def test_plain_form_checkout_answers_303(
    client: QuartClient, fake_payments: FakePayments
) -> None:
    response = await client.post("/checkout/poster", form={"attempt": ATTEMPT})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://pay.example/cs_test_fake")


async def test_price_comes_from_the_database_not_the_form(
    client: QuartClient, fake_payments: FakePayments, db: SQLiteStore
) -> None:
    await client.post(
        "/checkout/mug",
        form={"attempt": ATTEMPT, "unit_amount": "1", "price": "1", "currency": "jpy"},
    )
    assert fake_payments.requests[0].unit_amount == 1800
    assert fake_payments.requests[0].currency == "eur"
    row = await db.fetch_one("SELECT amount_total, currency FROM orders")
    assert row is not None and (row["amount_total"], row["currency"]) == (1800, "eur")


async def test_a_second_click_of_the_same_form_reuses_order_and_session(
    client: QuartClient, fake_payments: FakePayments, db: SQLiteStore
) -> None:
    first = await client.post("/checkout/mug", form={"attempt": ATTEMPT}, headers=HX)
    second = await client.post("/checkout/mug", form={"attempt": ATTEMPT}, headers=HX)
    assert first.headers["HX-Redirect"] == second.headers["HX-Redirect"]
    assert await count(db, "orders") == 1
    assert len(fake_payments.sessions) == 1


async def test_unknown_product_is_a_clear_404_and_writes_nothing(
    client: QuartClient, db: SQLiteStore
) -> None:
    response = await client.post("/checkout/nope", form={"attempt": ATTEMPT}, headers=HX)
    assert response.status_code == 404
    assert "We don&#39;t sell that product" in await response.get_data(as_text=True)
    plain = await client.post("/checkout/nope")
    page = await plain.get_data(as_text=True)
    assert plain.status_code == 404 and "<html" in page and "Back to the shop" in page
    assert await count(db, "orders") == 0


async def test_inactive_product_cannot_be_bought(client: QuartClient, db: SQLiteStore) -> None:
    response = await client.post("/checkout/retired", headers=HX)
    assert response.status_code == 409
    assert "not available" in await response.get_data(as_text=True)
    assert await count(db, "orders") == 0


async def test_get_checkout_creates_nothing(
    client: QuartClient, fake_payments: FakePayments, db: SQLiteStore
) -> None:
    response = await client.get("/checkout/mug")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert await count(db, "orders") == 0
    assert fake_payments.requests == []


async def test_stripe_down_gives_try_again_and_aborts_the_order(
    client: QuartClient, fake_payments: FakePayments, db: SQLiteStore
) -> None:
    fake_payments.fail = True
    response = await client.post("/checkout/mug", form={"attempt": ATTEMPT}, headers=HX)
    assert response.status_code == 503
    text = await response.get_data(as_text=True)
    assert "try again" in text and "fake outage" not in text and "Traceback" not in text
    order = await db.fetch_one("SELECT status FROM orders")
    assert order is not None and order["status"] == "aborted"


async def _checkout(client: QuartClient, db: SQLiteStore) -> tuple[str, str]:
    await client.post("/checkout/mug", form={"attempt": ATTEMPT})
    order = await db.fetch_one("SELECT token, stripe_session_id FROM orders")
    assert order is not None
    return order["token"], order["stripe_session_id"]


async def test_receipt_polls_until_final_then_stops(
    client: QuartClient, db: SQLiteStore, fake_payments: FakePayments
) -> None:
    token, session_id = await _checkout(client, db)
    page = await (await client.get(f"/orders/{token}")).get_data(as_text=True)
    assert "Confirming payment" in page
    assert 'hx-trigger="every 2s"' in page
    assert '<meta http-equiv="refresh"' in page
    assert 'aria-live="polite"' in page

    body, header = signed(
        event(
            "checkout.session.completed",
            # A real session's money too: the shop checks it against the order.
            {"id": session_id, "status": "complete", "payment_status": "paid"}
            | {"amount_total": 1800, "currency": "eur"},
        )
    )
    response = await client.post("/webhook", data=body, headers={"Stripe-Signature": header})
    assert response.status_code == 200

    fragment = await (await client.get(f"/orders/{token}/status")).get_data(as_text=True)
    assert "Paid" in fragment
    assert "hx-trigger" not in fragment
    assert "<html" not in fragment


async def test_success_page_asks_stripe_and_shows_paid_before_the_webhook(
    client: QuartClient, db: SQLiteStore, fake_payments: FakePayments
) -> None:
    token, session_id = await _checkout(client, db)
    fake_payments.complete(session_id)
    page = await (await client.get(f"/orders/{token}?session_id={session_id}")).get_data(
        as_text=True
    )
    assert "Paid" in page and "hx-trigger" not in page
    events = await db.fetch_all("SELECT status, source FROM order_events ORDER BY id")
    assert [(e["status"], e["source"]) for e in events] == [
        ("pending", "checkout"),
        ("paid", "success page"),
    ]


async def test_success_page_does_not_trust_the_query_string(
    client: QuartClient, db: SQLiteStore, fake_payments: FakePayments
) -> None:
    token, session_id = await _checkout(client, db)
    # The session is still open: the query string alone must not make it paid.
    page = await (await client.get(f"/orders/{token}?session_id={session_id}")).get_data(
        as_text=True
    )
    assert "Confirming payment" in page
    # Another order's or a made-up session id is not even looked up.
    page = await (await client.get(f"/orders/{token}?session_id=cs_test_other")).get_data(
        as_text=True
    )
    assert "Confirming payment" in page


async def test_when_stripe_cannot_be_asked_the_receipt_shows_the_order_as_stored(
    client: QuartClient,
    db: SQLiteStore,
    fake_payments: FakePayments,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token, session_id = await _checkout(client, db)
    fake_payments.complete(session_id)  # paid, but Stripe is down when we ask
    fake_payments.fail = True
    response = await client.get(f"/orders/{token}?session_id={session_id}")
    assert response.status_code == 200
    assert "Confirming payment" in await response.get_data(as_text=True)
    assert fake_payments.asked == [session_id]
    row = await db.fetch_one("SELECT id, status FROM orders")
    assert row is not None and row["status"] == "pending"
    assert f"order_id={row['id']}: could not retrieve its session" in caplog.text
    assert "fake outage" in caplog.text  # the reason reaches the log, not the page


async def test_a_final_order_is_never_fetched_again(
    client: QuartClient, db: SQLiteStore, fake_payments: FakePayments
) -> None:
    token, session_id = await _checkout(client, db)
    fake_payments.complete(session_id)
    page = await (await client.get(f"/orders/{token}?session_id={session_id}")).get_data(
        as_text=True
    )
    assert "Paid" in page
    assert fake_payments.asked == [session_id]
    # Receipts, polls and the cancel page of a paid order only read the database.
    for path in (
        f"/orders/{token}?session_id={session_id}",
        f"/orders/{token}",
        f"/orders/{token}/status",
        f"/orders/{token}/cancelled",
    ):
        response = await client.get(path)
        assert response.status_code == 200, path
    assert fake_payments.asked == [session_id]


async def test_unknown_order_token_is_404(client: QuartClient) -> None:
    for path in ("/orders/nope", "/orders/nope/status", "/orders/nope/cancelled"):
        response = await client.get(path)
        assert response.status_code == 404, path


async def test_cancel_expires_the_session_and_offers_the_way_back(
    client: QuartClient, db: SQLiteStore, fake_payments: FakePayments
) -> None:
    token, session_id = await _checkout(client, db)
    response = await client.get(f"/orders/{token}/cancelled")
    page = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Payment cancelled" in page and "/#product-mug" in page
    assert fake_payments.sessions[session_id].status == "expired"
    row = await db.fetch_one("SELECT status FROM orders")
    assert row is not None and row["status"] == "expired"


async def test_cancel_after_paying_keeps_the_payment(
    client: QuartClient, db: SQLiteStore, fake_payments: FakePayments
) -> None:
    token, session_id = await _checkout(client, db)
    fake_payments.complete(session_id)
    page = await (await client.get(f"/orders/{token}/cancelled")).get_data(as_text=True)
    assert "Your payment went through" in page
    row = await db.fetch_one("SELECT status FROM orders")
    assert row is not None and row["status"] == "paid"


# The whole policy, directive by directive (the checkout origin is the sandbox's here).
EXPECTED_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'", "http://127.0.0.1:12111"],
}


async def test_pages_carry_security_headers(client: QuartClient) -> None:
    response = await client.get("/")
    assert parse_csp(response.headers["Content-Security-Policy"]) == EXPECTED_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Permissions-Policy"] == (
        "camera=(), microphone=(), geolocation=(), payment=()"
    )
    # http base URL: no HSTS (it would pin a plain-http development host).
    assert "Strict-Transport-Security" not in response.headers


async def test_https_base_urls_turn_on_hsts(database: Path, fake_payments: FakePayments) -> None:
    await seed(database)
    settings = make_settings(database, base_url="https://shop.example")
    app = create_app(settings, payments=fake_payments)
    async with app.test_app():
        for path in ("/", "/orders/nope", "/static/css/shop.css"):
            response = await app.test_client().get(path)
            hsts = response.headers["Strict-Transport-Security"]
            assert hsts == "max-age=31536000; includeSubDomains", path


def test_the_csp_parser_reads_directives_not_substrings() -> None:
    assert parse_csp("default-src 'self'; img-src 'self' data:;") == {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
    }
    # "script-src 'self'" as a substring of another directive is not script-src.
    assert "script-src" not in parse_csp("default-src 'self'; x-script-src 'self'")
    with pytest.raises(AssertionError, match="twice"):
        parse_csp("script-src 'self'; script-src *")


async def test_cross_site_form_posts_are_refused(client: QuartClient, db: SQLiteStore) -> None:
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another site's page
        {"Origin": "https://evil.example"},
        {"Origin": "http://127.0.0.1:5000.evil.example"},
        {"Origin": "https://127.0.0.1:5000"},  # another scheme is another origin
        {"Origin": "null"},
    ):
        response = await client.post("/checkout/mug", form={"attempt": ATTEMPT}, headers=headers)
        assert response.status_code == 403, headers
        assert "sent from another site" in await response.get_data(as_text=True)
    assert await count(db, "orders") == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar, or a bookmark
        # The configured base URL's origin, in any case.
        {"Origin": "http://127.0.0.1:5000"},
        {"Origin": "HTTP://127.0.0.1:5000"},
        # The host the request came to (a second name for the shop).
        {"Origin": "http://shop.internal:8080", "Host": "shop.internal:8080"},
        {},  # neither header: not a browser carrying a shopper's cookies
        # The browser's own verdict wins over Origin, e.g. behind a proxy that rewrites Host.
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://shop-alias.example"},
    ],
    ids=[
        "same-origin",
        "none",
        "base-url",
        "base-url-upper",
        "request-host",
        "no-headers",
        "fetch-site-over-origin",
    ],
)
async def test_same_origin_posts_are_allowed(
    client: QuartClient, db: SQLiteStore, headers: dict[str, str]
) -> None:
    response = await client.post("/checkout/mug", form={"attempt": ATTEMPT}, headers=headers)
    assert response.status_code == 303
    assert await count(db, "orders") == 1


async def test_an_origin_allowed_for_one_host_is_refused_on_another(
    client: QuartClient, db: SQLiteStore
) -> None:
    headers = {"Origin": "http://shop.internal:8080", "Host": "other.internal:8080"}
    response = await client.post("/checkout/mug", form={"attempt": ATTEMPT}, headers=headers)
    assert response.status_code == 403
    assert await count(db, "orders") == 0


async def test_links_from_other_sites_still_open_pages(client: QuartClient) -> None:
    # Only state-changing requests are checked: a GET from a search result is fine.
    response = await client.get("/", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200


async def test_the_webhook_needs_no_origin_check(client: QuartClient) -> None:
    # Stripe posts from its own servers; the signature, not the origin, decides.
    body, header = signed(event("customer.created", {"id": "cus_1"}, "evt_o"))
    response = await client.post(
        "/webhook",
        data=body,
        headers={"Stripe-Signature": header, "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 200


async def test_every_catalog_view_gets_fresh_nonces(client: QuartClient, db: SQLiteStore) -> None:
    pages = [await (await client.get("/")).get_data(as_text=True) for _ in range(2)]
    nonces = [re.findall(r'name="attempt" value="([\w-]+)"', page) for page in pages]
    assert len(nonces[0]) == 2 and len(nonces[1]) == 2
    assert len(set(nonces[0] + nonces[1])) == 4
    assert "\x00" not in pages[0]


async def test_the_cached_catalog_follows_product_changes(
    shop: Quart, client: QuartClient
) -> None:
    assert "Poster" in await (await client.get("/")).get_data(as_text=True)
    await shop.extensions["db"].execute("UPDATE products SET active = 0 WHERE slug = 'poster'")
    shop.extensions["catalog_page"].max_age = 0  # the next view renders afresh
    assert "Poster" not in await (await client.get("/")).get_data(as_text=True)


def test_no_render_waits_on_a_thread_for_a_context_processor(shop: Quart) -> None:
    # Quart runs sync context processors in a thread pool, once per render.
    for processors in shop.template_context_processors.values():
        assert all(inspect.iscoroutinefunction(p) for p in processors)
