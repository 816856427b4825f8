"""Bad input changes nothing: fuzzed forms and webhooks, headers, tokens, body limits, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart

from storefront.store.sqlite import SQLiteStore
from tests.headers import parse_csp
from tests.live import CARD, buy, pay
from tests.money import assert_money_invariant
from tests.reliability.conftest import Stack, snapshot
from tests.shop import PRODUCTS, WEBHOOK_SECRET

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SLUGS = {p.slug for p in PRODUCTS}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
form_fields = st.dictionaries(st.text(max_size=20), st.text(max_size=80), max_size=5)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120)


@FUZZ
# A "/" in the slug is another path (routing merges slashes with a redirect).
@given(
    slug=st.text(max_size=40).filter(lambda s: s not in SLUGS - {"retired"} and "/" not in s),
    form=form_fields,
)
async def test_fuzzed_checkout_of_what_we_do_not_sell_is_4xx_and_writes_nothing(
    shop: Quart, db: SQLiteStore, slug: str, form: dict[str, str]
) -> None:
    before = await snapshot(db)
    response = await shop.test_client().post(f"/checkout/{quote(slug, safe='')}", form=form)
    assert 400 <= response.status_code < 500
    assert await snapshot(db) == before


@FUZZ
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", ""]
    ),
    fetch_site=st.sampled_from(["cross-site", "same-site"]),
)
async def test_fuzzed_cross_site_posts_are_403_and_write_nothing(
    shop: Quart, db: SQLiteStore, body: bytes, content_type: str, fetch_site: str
) -> None:
    before = await snapshot(db)
    response = await shop.test_client().post(
        "/checkout/mug",
        data=body,
        headers={"Content-Type": content_type, "Sec-Fetch-Site": fetch_site},
    )
    assert response.status_code == 403
    assert await snapshot(db) == before


@FUZZ
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]
    ),
)
async def test_fuzzed_checkout_bodies_never_500_and_never_set_the_price(
    shop: Quart, db: SQLiteStore, body: bytes, content_type: str
) -> None:
    before = await db.fetch_one("SELECT count(*) AS n FROM orders")
    response = await shop.test_client().post(
        "/checkout/mug", data=body, headers={"Content-Type": content_type}
    )
    assert response.status_code < 500
    after = await db.fetch_all("SELECT amount_total FROM orders")
    assert before is not None and len(after) - before["n"] <= 1
    assert all(r["amount_total"] == 1800 for r in after)


async def post_webhook(shop: Quart, body: bytes | str, header: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return await shop.test_client().post("/webhook", data=body, headers=headers)


def signature(body: bytes | str, at: int | None = None, secret: str = WEBHOOK_SECRET) -> str:
    text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
    stamp = int(time.time()) if at is None else at
    return stripe.WebhookSignature.generate_signature_header(text, secret, stamp)


@FUZZ
@given(
    body=st.binary(max_size=400) | json_values.map(json.dumps),
    header=st.none()
    | header_text
    | st.builds(
        lambda t, v: f"t={t},v1={v}",
        st.integers(-(2**40), 2**40),
        st.text("0123456789abcdef", max_size=64),
    ),
)
async def test_fuzzed_unsigned_webhooks_are_4xx_and_write_nothing(
    shop: Quart, db: SQLiteStore, body: bytes | str, header: str | None
) -> None:
    before = await snapshot(db)
    response = await post_webhook(shop, body, header)
    assert 400 <= response.status_code < 500
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "make_header",
    [
        lambda body: signature(body, secret="whsec_forged0000000000"),  # forged
        lambda body: signature(body, at=int(time.time()) - 3600),  # a day's retry old replay
        lambda body: signature(body, at=int(time.time()) - 301),  # just past the tolerance
        lambda body: signature(body).replace("v1=", "v0="),  # no v1 scheme
        lambda body: signature(body).split(",")[1],  # no timestamp
        lambda body: "t=" + signature(body).split(",")[0][2:] + ",v1=",  # empty signature
        lambda body: "v1=" + signature(body).split("v1=")[1] + ",t=1",  # an ancient t
    ],
    ids=["forged", "replayed", "stale", "v0", "no-t", "empty-v1", "old-t-last"],
)
async def test_more_bad_signatures_are_400(shop: Quart, db: SQLiteStore, make_header: Any) -> None:
    body = json.dumps(
        {"id": "evt_x", "type": "checkout.session.completed", "data": {"object": {}}}
    )
    before = await snapshot(db)
    header = make_header(body)
    response = await post_webhook(shop, body, header)
    assert response.status_code == 400
    assert await snapshot(db) == before


@FUZZ
@given(
    event_type=st.sampled_from(
        [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "checkout.session.expired",
            "charge.refunded",
            "customer.created",
        ]
    ),
    obj=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "status",
                "payment_status",
                "payment_intent",
                "client_reference_id",
                "customer_details",
                "metadata",
                "refunded",
            ]
        ),
        json_values,
    ),
    event_id=st.text(min_size=1, max_size=30),
)
async def test_fuzzed_signed_events_never_500_and_move_no_order(
    shop: Quart, db: SQLiteStore, event_type: str, obj: dict[str, Any], event_id: str
) -> None:
    # Signed, so it is Stripe's: garbage inside must still not become a 500
    # (Stripe would retry it for days) nor touch an order it does not name.
    await shop.test_client().post("/checkout/mug", form={"attempt": "z" * 22})
    orders_before = [r for r in await snapshot(db) if r[0] in ("orders", "order_events")]
    body = json.dumps({"id": event_id, "type": event_type, "data": {"object": obj}})
    response = await post_webhook(shop, body, signature(body))
    assert response.status_code in (200, 400)
    assert [r for r in await snapshot(db) if r[0] in ("orders", "order_events")] == orders_before


async def test_security_headers_on_every_kind_of_answer(tmp_path: Path) -> None:
    async with Stack(tmp_path / "shop.sqlite3") as stack, aiohttp.ClientSession() as http:
        token, _ = await buy(http, stack, "enamel-mug")
        answers = {
            "catalog": ("GET", "/"),
            "receipt": ("GET", f"/orders/{token}"),
            "status": ("GET", f"/orders/{token}/status"),
            "cancelled": ("GET", f"/orders/{token}/cancelled"),
            "not found": ("GET", "/orders/nope"),
            "get checkout": ("GET", "/checkout/enamel-mug"),
            "bad webhook": ("POST", "/webhook"),
            "static": ("GET", "/static/css/shop.css"),
        }
        for name, (method, path) in answers.items():
            async with http.request(method, stack.shop_url + path) as response:
                html = await response.text()
            headers = response.headers
            assert parse_csp(headers["Content-Security-Policy"]) == {
                "default-src": ["'self'"],
                "script-src": ["'self'"],
                "style-src": ["'self'"],
                "img-src": ["'self'", "data:"],
                "connect-src": ["'self'"],
                "object-src": ["'none'"],
                "base-uri": ["'none'"],
                "frame-ancestors": ["'none'"],
                "form-action": ["'self'", stack.sandbox_url],
            }, name
            assert headers["X-Content-Type-Options"] == "nosniff", name
            assert headers["X-Frame-Options"] == "DENY", name
            assert headers["Referrer-Policy"] == "same-origin", name
            if "html" in headers.get("Content-Type", ""):
                # The CSP forbids inline code and styles, so the pages must not need any.
                assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), name
                assert not re.search(r"\son[a-z]+\s*=", html), name
                assert not re.search(r"\sstyle\s*=", html), name


async def test_order_tokens_are_unguessable_and_receipts_not_enumerable(
    shop: Quart, db: SQLiteStore
) -> None:
    client = shop.test_client()
    for i in range(30):
        await client.post("/checkout/mug", form={"attempt": f"token-{i:016d}"})
    rows = await db.fetch_all("SELECT id, token FROM orders")
    tokens = [r["token"] for r in rows]
    assert len(set(tokens)) == len(tokens) == 30
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in tokens)  # 192 random bits
    miss = await (await client.get(f"/orders/{secrets.token_urlsafe(24)}")).get_data()
    token = tokens[0]
    for probe in (str(rows[0]["id"]), "1", token[:-1], token.upper(), token + "A", f"{token}%00"):
        response = await client.get(f"/orders/{probe}")
        assert response.status_code == 404, probe
        assert await response.get_data() == miss  # no hint how close a guess came
        assert (await client.get(f"/orders/{probe}/status")).status_code == 404


async def raw_http(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request by hand and return the status line, without finishing the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for part in body_parts:
            writer.write(part)
            await writer.drain()
        return await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()


async def test_a_huge_webhook_is_413_before_it_is_all_sent(tmp_path: Path) -> None:
    async with Stack(tmp_path / "shop.sqlite3") as stack:
        # Declares 50 MB and sends 64 KB: the answer comes without the rest.
        head = (
            b"POST /webhook HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
            b"Stripe-Signature: t=1,v1=00\r\nContent-Length: 50000000\r\n\r\n"
        )
        status = await raw_http(stack.shop_port, head, [b"x" * 65536])
        assert status.startswith(b"HTTP/1.1 413")
        # Chunked, with no length up front: cut off once past the limit, never finished.
        head = (
            b"POST /webhook HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
            b"Stripe-Signature: t=1,v1=00\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
        status = await raw_http(stack.shop_port, head, [chunk] * 5)
        assert status.startswith(b"HTTP/1.1 413")
        row = await stack.db.fetch_one("SELECT count(*) AS n FROM webhook_events")
        assert row is not None and row["n"] == 0


async def test_no_secret_or_card_number_reaches_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, database_url: str | None
) -> None:
    api_key = "sk_test_" + secrets.token_hex(16)
    # The test cluster trusts every login, so a password in the URL costs nothing
    # and shows whether the database URL's password ever reaches a log line.
    db_password = secrets.token_hex(12)
    if database_url:
        database_url = database_url.replace("://postgres@", f"://postgres:{db_password}@")
    caplog.set_level(logging.DEBUG)
    # The CLI quiets the SDK; here we want its most talkative lines too.
    caplog.set_level(logging.DEBUG, logger="stripe")
    stack = Stack(
        tmp_path / "shop.sqlite3", shop={"stripe_secret_key": api_key}, database_url=database_url
    )
    async with stack, aiohttp.ClientSession() as http:
        token, pay_url = await buy(http, stack, "enamel-mug")
        await pay(http, pay_url)
        await stack.wait_for_status(token, "paid")
        async with http.get(f"{stack.shop_url}/orders/{token}?session_id=x") as response:
            await response.read()
        # Refusals and failures log too: a forged webhook, a declined card.
        async with http.post(
            f"{stack.shop_url}/webhook", data=b"{}", headers={"Stripe-Signature": "t=1,v1=00"}
        ) as response:
            assert response.status == 400
        _, declined = await buy(http, stack, "canvas-tote")
        await pay(http, declined, number="4000 0000 0000 0002")
        await stack.sandbox_state.wait_idle(10)
        assert_money_invariant(stack.location, stack.sandbox_state)
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )
    assert "stripe" in {r.name.split(".")[0] for r in caplog.records}  # the SDK was heard
    card_digits = re.sub(r"\D", "", CARD["number"])
    keys = (api_key, stack.sandbox_settings.webhook_secret, db_password)
    for secret in (*keys, card_digits, CARD["number"]):
        assert secret not in text
    assert "4000000000000002" not in text and "4000 0000 0000 0002" not in text
    assert not re.search(r"\b(?:\d[ -]?){13,19}\b", text)  # nothing card-like at all
