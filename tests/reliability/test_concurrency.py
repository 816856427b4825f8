"""One winner under concurrency, one transaction per task, and a locked database."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from quart import Quart

from storefront import create_app
from storefront.fulfilment import EventResult, apply_event, apply_session
from storefront.orders import OrderStatus
from storefront.payments import WebhookEvent
from storefront.store.sqlite import SQLiteStore
from tests.fakes import FakePayments
from tests.live import buy, pay
from tests.money import assert_money_invariant
from tests.reliability.conftest import Stack, snapshot
from tests.shop import event, make_settings, seed, signed

N = 30


async def checkout(app: Quart) -> tuple[str, str]:
    """Press Buy once; return the order token and its session id."""
    response = await app.test_client().post("/checkout/mug", form={"attempt": "c" * 22})
    assert response.status_code == 303
    row = await app.extensions["db"].fetch_one("SELECT token, stripe_session_id FROM orders")
    assert row is not None
    return row["token"], row["stripe_session_id"]


def paid_session(session_id: str) -> dict[str, object]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "payment_intent": f"pi_{session_id}",
        "amount_total": 1800,
        "currency": "eur",
    }


def completed(session_id: str, event_id: str) -> dict[str, object]:
    return event("checkout.session.completed", paid_session(session_id), event_id)


async def paid_entries(db: SQLiteStore) -> list[str]:
    rows = await db.fetch_all("SELECT source FROM order_events WHERE status = 'paid'")
    return [r["source"] for r in rows]


async def test_webhook_success_page_and_poll_at_once_make_one_transition(
    database: Path, fake_payments: FakePayments
) -> None:
    await seed(database)
    # Polls may ask Stripe as soon as the order is a few milliseconds old.
    app = create_app(make_settings(database, status_sync_after=0.001), payments=fake_payments)
    async with app.test_app():
        client = app.test_client()
        token, session_id = await checkout(app)
        fake_payments.complete(session_id)
        await asyncio.sleep(0.01)
        body, header = signed(completed(session_id, "evt_once"))
        webhook = {"Stripe-Signature": header, "Content-Type": "application/json"}
        calls = []
        for i in range(N):
            if i % 3 == 0:
                calls.append(client.post("/webhook", data=body, headers=webhook))
            elif i % 3 == 1:
                calls.append(client.get(f"/orders/{token}?session_id={session_id}"))
            else:
                calls.append(client.get(f"/orders/{token}/status"))
        responses = await asyncio.gather(*calls)
        assert all(r.status_code == 200 for r in responses)
        db = app.extensions["db"]
        assert len(await paid_entries(db)) == 1
        found = await db.order_with_timeline(token)
        assert found is not None and found[0].status is OrderStatus.PAID
        results = [(await r.get_json())["result"] for r in responses[::3]]
        # One delivery is applied or finds the order already paid; the rest are duplicates.
        assert results.count("duplicate") == len(results) - 1


async def test_many_concurrent_appliers_on_the_database_make_one_transition(
    db: SQLiteStore, shop: Quart, fake_payments: FakePayments
) -> None:
    token, session_id = await checkout(shop)
    fake_payments.complete(session_id)
    session = await fake_payments.retrieve_session(session_id)
    found = await db.order_with_timeline(token)
    assert found is not None
    order = found[0]
    events = [
        WebhookEvent(f"evt_{i}", "checkout.session.completed", paid_session(session_id))
        for i in range(N)
    ]
    results = await asyncio.gather(
        *(apply_event(db, e) for e in events),
        *(apply_session(db, order.id, session, source="success page") for _ in range(N)),
    )
    moved = sum(1 for r in results if r is True or r is EventResult.APPLIED)
    assert moved == 1
    assert len(await paid_entries(db)) == 1


# SQLite's writer thread (Database.write); PostgreSQL transactions are the server's.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_failing_transaction_neither_loses_nor_commits_the_others_work(
    db: SQLiteStore,
) -> None:
    # Writes from many tasks interleave on the event loop; each must commit or
    # roll back whole, never take another's half-done work with it.
    def doomed(conn: sqlite3.Connection, i: int) -> None:
        conn.execute("INSERT INTO webhook_events (id, type) VALUES (?, 'x')", (f"doomed{i}",))
        raise RuntimeError("fails half-way")

    def kept(conn: sqlite3.Connection, i: int) -> None:
        conn.execute("INSERT INTO webhook_events (id, type) VALUES (?, 'x')", (f"kept{i}",))

    results = await asyncio.gather(
        *(db.write(doomed, i) for i in range(20)),
        *(db.write(kept, i) for i in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, RuntimeError) for r in results) == 20
    rows = {r["id"] for r in await db.fetch_all("SELECT id FROM webhook_events")}
    assert rows == {f"kept{i}" for i in range(20)}


# SQLite's writer thread (Database.write); PostgreSQL transactions are the server's.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_cancelled_transaction_leaves_the_writer_usable(db: SQLiteStore) -> None:
    # A client hanging up cancels its request task, at any point of a write.
    # The write then finishes whole or not at all, and no later write fails.
    def insert(conn: sqlite3.Connection, row: str) -> None:
        conn.execute("INSERT INTO webhook_events (id, type) VALUES (?, 'first')", (row,))
        conn.execute("INSERT INTO webhook_events (id, type) VALUES (?, 'second')", (row + "/2",))

    for yields in range(8):
        task = asyncio.create_task(db.write(insert, f"cancelled{yields}"))
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.write(insert, f"after{yields}")
    firsts = {
        r["id"] for r in await db.fetch_all("SELECT id FROM webhook_events WHERE type = 'first'")
    }
    seconds = {
        r["id"] for r in await db.fetch_all("SELECT id FROM webhook_events WHERE type = 'second'")
    }
    assert {f"after{i}" for i in range(8)} <= firsts
    assert seconds == {row + "/2" for row in firsts}  # no write was left half-done


@pytest.fixture
async def impatient_shop(database: Path, fake_payments: FakePayments) -> AsyncIterator[Quart]:
    """A shop that waits only 100 ms for a database lock."""
    await seed(database)
    app = create_app(make_settings(database, db_busy_timeout_ms=100), payments=fake_payments)
    async with app.test_app():
        yield app


async def test_a_locked_database_answers_500_and_the_retry_applies_it_once(
    impatient_shop: Quart, database: Path
) -> None:
    db = impatient_shop.extensions["db"]
    client = impatient_shop.test_client()
    _, session_id = await checkout(impatient_shop)
    body, header = signed(completed(session_id, "evt_locked"))
    headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
    before = await snapshot(db)

    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        response = await client.post("/webhook", data=body, headers=headers)
        assert response.status_code == 500
        assert await snapshot(db) == before
    finally:
        other.execute("ROLLBACK")
        other.close()

    retry = await client.post("/webhook", data=body, headers=headers)
    assert retry.status_code == 200
    assert (await retry.get_json())["result"] == "applied"
    again = await client.post("/webhook", data=body, headers=headers)
    assert (await again.get_json())["result"] == "duplicate"
    assert len(await paid_entries(db)) == 1


async def test_over_http_stripe_retries_past_a_locked_database(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    stack = Stack(
        tmp_path / "shop.sqlite3",
        shop={"db_busy_timeout_ms": 100},
        retry_schedule=(0.3, 0.3, 0.5, 1.0, 2.0),
    )
    async with stack:
        token, pay_url = await buy(http, stack, "enamel-mug")
        other = sqlite3.connect(stack.database, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            assert (await pay(http, pay_url)).status == 303
            await asyncio.sleep(0.5)  # the first delivery and a retry meet the lock
            assert (await stack.order(token))["status"] == "pending"
        finally:
            other.execute("ROLLBACK")
            other.close()
        await stack.wait_for_status(token, "paid")
        await stack.sandbox_state.wait_idle(10)
        deliveries = [
            a.status
            for d in stack.sandbox_state.deliverer.deliveries.values()
            for a in d[0].attempts
        ]
        assert 500 in deliveries and deliveries[-1] == 200
        assert len(await paid_entries(stack.db)) == 1
        assert_money_invariant(stack.database, stack.sandbox_state)


async def test_reads_see_committed_writes_while_other_reads_are_in_flight(db: SQLiteStore) -> None:
    # One reader connection serves every task. A statement of one task left
    # mid-way must not pin an old snapshot that hides another task's commit.
    stop = asyncio.Event()

    async def browse() -> None:
        while not stop.is_set():
            await db.fetch_one("SELECT count(*) FROM orders")
            await db.fetch_all("SELECT id FROM products")

    readers = [asyncio.create_task(browse()) for _ in range(8)]
    try:
        for _ in range(100):
            order = await db.open_order(1, 1800, "eur", None)
            assert await db.order_by_id(order.id) is not None
    finally:
        stop.set()
        await asyncio.gather(*readers)
