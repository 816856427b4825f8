"""POST /webhook: signatures, deduplication, transactions (real SQLite, fake gateway)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
import stripe
from quart.testing import QuartClient

from storefront.store.sqlite import SQLiteStore
from tests.shop import WEBHOOK_SECRET, event, signed

ATTEMPT = "b" * 22


async def pending_order(client: QuartClient, db: SQLiteStore) -> tuple[str, str]:
    await client.post("/checkout/mug", form={"attempt": ATTEMPT})
    row = await db.fetch_one("SELECT token, stripe_session_id FROM orders")
    assert row is not None
    return row["token"], row["stripe_session_id"]


def completed(session_id: str, event_id: str = "evt_1", payment_status: str = "paid") -> dict:
    return event(
        "checkout.session.completed",
        {
            "id": session_id,
            "object": "checkout.session",
            "status": "complete",
            "payment_status": payment_status,
            "payment_intent": "pi_123",
            "customer_details": {"email": "shopper@example.com"},
            "amount_total": 1800,  # the mug's price: the shop checks it
            "currency": "eur",
        },
        event_id,
    )


async def snapshot(db: SQLiteStore) -> list[tuple]:
    rows = []
    for table in ("orders", "order_events", "webhook_events"):
        rows += [(table, *tuple(r)) for r in await db.fetch_all(f"SELECT * FROM {table}")]
    return rows


async def post(client: QuartClient, body: str, header: str | None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return await client.post("/webhook", data=body, headers=headers)


async def test_completed_paid_moves_the_order_to_paid(
    client: QuartClient, db: SQLiteStore
) -> None:
    _, session_id = await pending_order(client, db)
    response = await post(client, *signed(completed(session_id)))
    assert response.status_code == 200
    assert (await response.get_json())["result"] == "applied"
    order = await db.fetch_one("SELECT * FROM orders")
    assert order is not None
    assert order["status"] == "paid"
    assert order["payment_intent"] == "pi_123"
    assert order["customer_email"] == "shopper@example.com"
    timeline = await db.fetch_all("SELECT status, source, stripe_event_id FROM order_events")
    assert [tuple(r) for r in timeline] == [
        ("pending", "checkout", None),
        ("paid", "webhook", "evt_1"),
    ]


async def test_the_signature_covers_the_raw_bytes_as_sent(
    client: QuartClient, db: SQLiteStore
) -> None:
    # Stripe's bodies are pretty-printed and end in a newline: verify them untouched.
    _, session_id = await pending_order(client, db)
    body = json.dumps(completed(session_id), indent=2) + "\n"
    response = await post(client, body, signed_header(body))
    assert response.status_code == 200
    assert (await response.get_json())["result"] == "applied"


async def test_a_duplicate_event_is_a_no_op_200(client: QuartClient, db: SQLiteStore) -> None:
    _, session_id = await pending_order(client, db)
    body, header = signed(completed(session_id))
    assert (await post(client, body, header)).status_code == 200
    before = await snapshot(db)
    again = await post(client, body, header)
    assert again.status_code == 200
    assert (await again.get_json())["result"] == "duplicate"
    assert await snapshot(db) == before


async def test_a_signed_event_with_a_nul_in_its_id_is_400_and_changes_nothing(
    client: QuartClient, db: SQLiteStore
) -> None:
    _, session_id = await pending_order(client, db)
    before = await snapshot(db)
    response = await post(client, *signed(completed(session_id, event_id="evt_\x00")))
    assert response.status_code == 400
    assert await snapshot(db) == before


async def test_unknown_event_types_are_acknowledged(client: QuartClient, db: SQLiteStore) -> None:
    response = await post(client, *signed(event("customer.created", {"id": "cus_1"}, "evt_c")))
    assert response.status_code == 200
    assert (await response.get_json())["result"] == "ignored"


async def test_a_late_expiry_does_not_undo_a_payment(client: QuartClient, db: SQLiteStore) -> None:
    _, session_id = await pending_order(client, db)
    await post(client, *signed(completed(session_id)))
    expired = event("checkout.session.expired", {"id": session_id, "status": "expired"}, "evt_2")
    response = await post(client, *signed(expired))
    assert (await response.get_json())["result"] == "unchanged"
    order = await db.fetch_one("SELECT status FROM orders")
    assert order is not None and order["status"] == "paid"


def _forged(session_id: str) -> tuple[str, str]:
    return signed(completed(session_id), secret="whsec_someoneelse000000")


def _stale(session_id: str) -> tuple[str, str]:
    return signed(completed(session_id), at=int(time.time()) - 301)


def _future(session_id: str) -> tuple[str, str]:
    return signed(completed(session_id), at=int(time.time()) + 3600)


def _future_with_plus(session_id: str) -> tuple[str, str]:
    # int() reads "+<t>" as <t>, so the HMAC still matches; the future check must see it.
    body, header = _future(session_id)
    return body, header.replace("t=", "t=+", 1)


def _future_with_underscore(session_id: str) -> tuple[str, str]:
    body, header = _future(session_id)
    stamp = header.split(",")[0].removeprefix("t=")
    return body, header.replace(f"t={stamp}", f"t={stamp[0]}_{stamp[1:]}", 1)


def _present_with_plus(session_id: str) -> tuple[str, str]:
    # Even a current timestamp is refused unless written as plain digits.
    body, header = signed(completed(session_id))
    return body, header.replace("t=", "t=+", 1)


def _missing(session_id: str) -> tuple[str, None]:
    return signed(completed(session_id))[0], None


def _malformed(session_id: str) -> tuple[str, str]:
    return signed(completed(session_id))[0], "t=abc,v1="


def _tampered(session_id: str) -> tuple[str, str]:
    body, header = signed(completed(session_id))
    return body.replace('"paid"', '"unpaid"', 1), header


@pytest.mark.parametrize(
    "make",
    [
        _forged,
        _stale,
        _future,
        _future_with_plus,
        _future_with_underscore,
        _present_with_plus,
        _missing,
        _malformed,
        _tampered,
    ],
    ids=lambda f: f.__name__,
)
async def test_bad_signatures_are_400_and_change_nothing(
    client: QuartClient, db: SQLiteStore, make
) -> None:  # type: ignore[no-untyped-def]
    _, session_id = await pending_order(client, db)
    before = await snapshot(db)
    response = await post(client, *make(session_id))
    assert response.status_code == 400
    assert await snapshot(db) == before


async def test_a_signed_body_that_is_not_an_event_is_400(client: QuartClient) -> None:
    body = '{"id": "evt_x", "type": "x", "data": {"object": []}}'
    header = stripe.WebhookSignature.generate_signature_header(
        body, WEBHOOK_SECRET, int(time.time())
    )
    assert (await post(client, body, header)).status_code == 400


async def test_the_odd_timestamps_would_pass_the_sdk_alone(client: QuartClient) -> None:
    # Guards the cases above: their HMAC is right, so only our own check refuses them.
    for make in (_future_with_plus, _future_with_underscore, _present_with_plus):
        body, header = make("cs_test_x")
        stripe.WebhookSignature.verify_header(body, header, WEBHOOK_SECRET, tolerance=300)


async def test_a_signed_but_deeply_nested_body_is_400_not_500(
    client: QuartClient, db: SQLiteStore
) -> None:
    depth = 50_000
    body = '{"id": "evt_deep", "type": "x", "data": {"object": ' + "[" * depth + "]" * depth
    body += "}}"
    await pending_order(client, db)
    before = await snapshot(db)
    response = await post(client, body, signed_header(body))
    assert response.status_code == 400
    assert await snapshot(db) == before


def signed_header(body: str) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        body, WEBHOOK_SECRET, int(time.time())
    )


async def test_a_failure_before_commit_is_500_and_the_retry_applies_it(
    client: QuartClient, db: SQLiteStore
) -> None:
    _, session_id = await pending_order(client, db)
    body, header = signed(completed(session_id))
    # Break the timeline table for real, so the transaction fails half-way.
    await db.execute("ALTER TABLE order_events RENAME TO order_events_away")
    response = await post(client, body, header)
    assert response.status_code == 500
    assert "Traceback" not in await response.get_data(as_text=True)
    assert await db.fetch_all("SELECT * FROM webhook_events") == []
    order = await db.fetch_one("SELECT status FROM orders")
    assert order is not None and order["status"] == "pending"

    await db.execute("ALTER TABLE order_events_away RENAME TO order_events")
    retry = await post(client, body, header)
    assert retry.status_code == 200
    order = await db.fetch_one("SELECT status FROM orders")
    assert order is not None and order["status"] == "paid"


async def test_an_oversized_body_is_413(client: QuartClient, db: SQLiteStore) -> None:
    body = "x" * (300 * 1024)
    response = await client.post("/webhook", data=body, headers={"Stripe-Signature": "t=1,v1=00"})
    assert response.status_code == 413


def replace_file(database: Path) -> Path:
    """Move the file away and put an empty one in its place, as a botched restore would."""
    moved = database.with_name("moved.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").rename(f"{moved}{suffix}")
    database.write_bytes(b"")
    return moved


# A file moved under the running shop: SQLite's own failure (a server has no file to move).
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_replaced_database_file_refuses_webhooks_with_503(
    client: QuartClient, db: SQLiteStore, database: Path
) -> None:
    _, session_id = await pending_order(client, db)
    moved = replace_file(database)
    response = await post(client, *signed(completed(session_id)))
    assert response.status_code == 503
    assert written(database, moved) == (0, 0, "pending")


def written(database: Path, moved: Path) -> tuple[int, int, str]:
    """The new file's size, and the events and order status in the moved one."""
    with sqlite3.connect(moved) as conn:
        events = conn.execute("SELECT count(*) FROM webhook_events").fetchone()[0]
        status = conn.execute("SELECT status FROM orders").fetchone()[0]
    return database.stat().st_size, events, status


async def test_a_refund_keeps_what_the_payment_recorded(
    client: QuartClient, db: SQLiteStore
) -> None:
    token, session_id = await pending_order(client, db)
    paid = completed(session_id)
    paid["data"]["object"].update(amount_total=1800, currency="eur")
    assert (await post(client, *signed(paid))).status_code == 200
    # A charge names no customer: the refund must not wipe the email the payment stored.
    refund = event(
        "charge.refunded",
        {
            "id": "ch_1",
            "object": "charge",
            "payment_intent": "pi_123",
            "refunded": True,
            "amount": 1800,
            "amount_refunded": 1800,
            "currency": "eur",
            "metadata": {"order_token": token},
        },
        "evt_refund",
    )
    response = await post(client, *signed(refund))
    assert (await response.get_json())["result"] == "applied"
    order = await db.fetch_one("SELECT * FROM orders")
    assert order is not None
    assert order["status"] == "refunded"
    assert order["customer_email"] == "shopper@example.com"
    assert order["payment_intent"] == "pi_123"
    assert order["stripe_session_id"] == session_id
    timeline = await db.fetch_all("SELECT status, stripe_event_id FROM order_events ORDER BY id")
    assert [tuple(r) for r in timeline] == [
        ("pending", None),
        ("paid", "evt_1"),
        ("refunded", "evt_refund"),
    ]


# Payloads as endpoints registered on older API versions receive them: fields
# since renamed or added are absent, fields since removed are present. The shop
# reads events by field name, so they apply the same way.
OLDER_VERSION_PAYLOADS = {
    "2020-08-27": {
        "session": {"payment_method_types": ["card"], "shipping": None, "livemode": False},
        "charge": {"refunds": {"object": "list", "data": [], "has_more": False}},
    },
    "2024-06-20": {
        "session": {"ui_mode": "hosted", "shipping_details": None, "payment_method_types": []},
        "charge": {"refunds": None},
    },
}


@pytest.mark.parametrize("api_version", sorted(OLDER_VERSION_PAYLOADS))
async def test_events_of_an_older_api_version_still_apply(
    client: QuartClient, db: SQLiteStore, api_version: str
) -> None:
    extra = OLDER_VERSION_PAYLOADS[api_version]
    _, session_id = await pending_order(client, db)
    paid = completed(session_id)
    paid["api_version"] = api_version
    paid["data"]["object"].update(extra["session"])
    response = await post(client, *signed(paid))
    assert (await response.get_json())["result"] == "applied"

    refund = event(
        "charge.refunded",
        {
            "id": "ch_1",
            "object": "charge",
            "amount": 1800,
            "amount_refunded": 1800,
            "currency": "eur",
            "payment_intent": "pi_123",
            "refunded": True,
            **extra["charge"],
        },
        "evt_2",
    )
    refund["api_version"] = api_version
    response = await post(client, *signed(refund))
    assert (await response.get_json())["result"] == "applied"
    order = await db.fetch_one("SELECT status, customer_email FROM orders")
    assert order is not None
    assert tuple(order) == ("refunded", "shopper@example.com")
