"""Refund and dispute events at the webhook: amounts only rise, mismatches flag, logs record."""

from __future__ import annotations

from typing import Any

from quart.testing import QuartClient

from storefront.store.sqlite import SQLiteStore
from tests.integration.test_webhook import completed, pending_order, post
from tests.shop import event, signed


async def send(client: QuartClient, event_type: str, obj: dict[str, Any], event_id: str) -> str:
    body, header = signed(event(event_type, obj, event_id))
    answer = await post(client, body, header)
    assert answer.status_code == 200
    return (await answer.get_json())["result"]


def charge(refunded: int, *, amount: int = 1800, intent: str = "pi_123") -> dict[str, Any]:
    return {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": intent,
        "amount": amount,
        "currency": "eur",
        "amount_refunded": refunded,
        "refunded": refunded == amount,
    }


async def paid(client: QuartClient, db: SQLiteStore) -> int:
    token, session_id = await pending_order(client, db)
    body, header = signed(completed(session_id))
    assert (await post(client, body, header)).status_code == 200
    row = await db.fetch_one("SELECT id, status FROM orders WHERE token = ?", (token,))
    assert row["status"] == "paid"
    return int(row["id"])


async def order_row(db: SQLiteStore, order_id: int) -> Any:
    return await db.fetch_one("SELECT * FROM orders WHERE id = ?", (order_id,))


async def test_partial_refunds_raise_the_amount_out_of_order_and_never_lower_it(
    client: QuartClient, db: SQLiteStore
) -> None:
    order_id = await paid(client, db)
    assert await send(client, "charge.refunded", charge(800), "evt_r2") == "applied"
    # The earlier partial refund's event arrives late: it changes nothing.
    assert await send(client, "charge.refunded", charge(300), "evt_r1") == "unchanged"
    row = await order_row(db, order_id)
    assert (row["status"], row["amount_refunded"], row["flagged_at"]) == ("paid", 800, None)
    assert await send(client, "charge.refunded", charge(1800), "evt_r3") == "applied"
    row = await order_row(db, order_id)
    assert (row["status"], row["amount_refunded"]) == ("refunded", 1800)
    log = await db.fetch_all("SELECT id, order_id, result FROM webhook_events ORDER BY id")
    assert {(r["id"], r["order_id"], r["result"]) for r in log} >= {
        ("evt_r1", order_id, "unchanged"),
        ("evt_r2", order_id, "applied"),
        ("evt_r3", order_id, "applied"),
    }


async def test_a_partial_refund_of_another_amount_flags_and_records_nothing(
    client: QuartClient, db: SQLiteStore
) -> None:
    order_id = await paid(client, db)
    assert await send(client, "charge.refunded", charge(100, amount=999), "evt_x") == "flagged"
    row = await order_row(db, order_id)
    assert (row["status"], row["amount_refunded"]) == ("paid", 0)
    assert "refunded refused" in row["flag_reason"]


async def test_a_dispute_for_an_unknown_payment_is_ignored_and_a_known_one_flags(
    client: QuartClient, db: SQLiteStore
) -> None:
    order_id = await paid(client, db)
    dispute = {
        "id": "du_1",
        "object": "dispute",
        "amount": 1800,
        "currency": "eur",
        "charge": "ch_1",
        "payment_intent": "pi_other",
        "reason": "fraudulent",
        "status": "needs_response",
    }
    assert await send(client, "charge.dispute.created", dispute, "evt_d0") == "ignored"
    known = {**dispute, "payment_intent": "pi_123"}
    assert await send(client, "charge.dispute.created", known, "evt_d1") == "flagged"
    assert await send(client, "charge.dispute.created", known, "evt_d1") == "duplicate"
    won = {**known, "status": "won"}
    assert await send(client, "charge.dispute.closed", won, "evt_d2") == "flagged"
    row = await order_row(db, order_id)
    assert row["status"] == "paid" and "du_1" in row["flag_reason"]
    stored = await db.fetch_all("SELECT id, status FROM disputes")
    assert [tuple(r) for r in stored] == [("du_1", "won")]
    # A malformed dispute (no amount) is not stored and changes nothing.
    broken = {k: v for k, v in known.items() if k != "amount"} | {"id": "du_2"}
    assert await send(client, "charge.dispute.created", broken, "evt_d3") == "ignored"
    assert len(await db.fetch_all("SELECT id FROM disputes")) == 1
