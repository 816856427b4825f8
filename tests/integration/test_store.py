"""The SQLite store on a real file: every query, its conditions and its transactions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storefront.catalog import NewProduct
from storefront.evidence import EventOutcome, EventResult
from storefront.orders import OrderStatus, timestamp
from storefront.store import Store
from storefront.store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    db = SQLiteStore(tmp_path / "store.sqlite3")
    await db.open()
    await db.save_products(
        [NewProduct("mug", "Mug", 1800, "eur"), NewProduct("old", "Old", 900, "eur", active=False)]
    )
    try:
        yield db
    finally:
        await db.close()


async def set_updated_at(store: SQLiteStore, order_id: int, seconds_ago: float) -> None:
    stamp = timestamp(time.time() - seconds_ago)
    await store.write(
        lambda conn: conn.execute(
            "UPDATE orders SET updated_at = ? WHERE id = ?", (stamp, order_id)
        )
    )


def paid(session_id: str, amount: int = 1800) -> EventOutcome:
    return EventOutcome(
        status=OrderStatus.PAID,
        session_id=session_id,
        payment_intent="pi_1",
        amount=amount,
        currency="eur",
    )


async def test_it_is_a_store(store: SQLiteStore) -> None:
    assert isinstance(store, Store)


async def test_products_upsert_by_slug_and_only_active_ones_are_listed(
    store: SQLiteStore,
) -> None:
    assert [p.slug for p in await store.active_products()] == ["mug"]
    assert await store.save_products([NewProduct("mug", "Big mug", 2000, "eur")]) == 1
    mug = await store.product_by_slug("mug")
    assert mug is not None and (mug.name, mug.unit_amount) == ("Big mug", 2000)
    old = await store.product_by_slug("old")
    assert old is not None and not old.active
    assert await store.product_by_slug("none") is None


async def test_a_second_click_finds_the_same_pending_order(store: SQLiteStore) -> None:
    first = await store.open_order(1, 1800, "eur", "attempt-1", 5000)
    await set_updated_at(store, first.id, 3600)
    again = await store.open_order(1, 1800, "eur", "attempt-1", 9000)
    assert again.id == first.id and again.expires_at == 5000
    assert again.updated_at > timestamp(time.time() - 60)
    other = await store.open_order(1, 1800, "eur", None)
    assert other.id != first.id and other.status is OrderStatus.PENDING
    found = await store.order_with_timeline(first.token)
    assert found is not None and [e.status for e in found[1]] == [OrderStatus.PENDING]


async def test_a_session_attaches_only_to_a_pending_order_without_another(
    store: SQLiteStore,
) -> None:
    order = await store.open_order(1, 1800, "eur", None)
    assert await store.attach_session(order.id, "cs_1")
    assert await store.attach_session(order.id, "cs_1")  # the same session again
    assert not await store.attach_session(order.id, "cs_2")
    aborted = await store.open_order(1, 1800, "eur", None)
    assert await store.abort_without_session(aborted.id, untouched_for=0, source="checkout")
    assert not await store.attach_session(aborted.id, "cs_3")


async def test_abort_waits_until_the_checkout_is_untouched_for_long_enough(
    store: SQLiteStore,
) -> None:
    order = await store.open_order(1, 1800, "eur", None)
    assert not await store.abort_without_session(order.id, untouched_for=60, source="reconcile")
    await set_updated_at(store, order.id, 61)
    assert await store.abort_without_session(order.id, untouched_for=60, source="reconcile")
    now = await store.order_by_id(order.id)
    assert now is not None and now.status is OrderStatus.ABORTED


async def test_of_concurrent_moves_exactly_one_wins(store: SQLiteStore) -> None:
    order = await store.open_order(1, 1800, "eur", None)
    moves = await asyncio.gather(
        *(store.transition(order.id, OrderStatus.EXPIRED, source=f"t{i}") for i in range(10))
    )
    assert sum(m is not None for m in moves) == 1
    found = await store.order_with_timeline(order.token)
    assert found is not None
    assert [e.status for e in found[1]] == [OrderStatus.PENDING, OrderStatus.EXPIRED]
    # A move the state machine forbids changes nothing.
    assert await store.transition(order.id, OrderStatus.PENDING, source="late") is None


async def test_an_event_applies_once_and_its_repeat_changes_nothing(store: SQLiteStore) -> None:
    order = await store.open_order(1, 1800, "eur", None)
    await store.attach_session(order.id, "cs_1")
    first = await store.record_and_apply("evt_1", "checkout.session.completed", paid("cs_1"))
    assert first == (EventResult.APPLIED, order.id, None)
    again = await store.record_and_apply("evt_1", "checkout.session.completed", paid("cs_1"))
    assert again == (EventResult.DUPLICATE, None, None)
    assert await store.record_and_apply("evt_2", "other", None) == (
        EventResult.IGNORED,
        None,
        None,
    )
    now = await store.order_by_id(order.id)
    assert now is not None and (now.status, now.payment_intent) == (OrderStatus.PAID, "pi_1")
    assert await store.is_known(payment_intent="pi_1")
    assert not await store.is_known(order_token="nobody")


async def test_a_mismatch_flags_and_the_first_reason_stays(store: SQLiteStore) -> None:
    order = await store.open_order(1, 1800, "eur", None)
    await store.attach_session(order.id, "cs_1")
    result, reason, moved = await store.apply_outcome(order.id, paid("cs_1", 1), "reconcile")
    assert (result, moved) == (EventResult.FLAGGED, False)
    assert reason is not None and reason.startswith("reconcile: paid refused")
    await store.flag(order.id, "a later reason")
    now = await store.order_by_id(order.id)
    assert now is not None and now.status is OrderStatus.PENDING
    assert now.flag_reason == reason and now.flagged


async def test_find_order_prefers_the_session_then_the_token(store: SQLiteStore) -> None:
    a = await store.open_order(1, 1800, "eur", None)
    b = await store.open_order(1, 1800, "eur", None)
    await store.attach_session(a.id, "cs_a")
    found = await store.find_order(session_id="cs_a", order_token=b.token)
    assert found is not None and found.id == a.id
    found = await store.find_order(session_id="cs_none", order_token=b.token)
    assert found is not None and found.id == b.id
    assert await store.find_order() is None


async def test_stale_open_orders_page_through_by_id(store: SQLiteStore) -> None:
    ids = [(await store.open_order(1, 1800, "eur", None)).id for _ in range(3)]
    fresh = await store.open_order(1, 1800, "eur", None)
    for order_id in ids:
        await set_updated_at(store, order_id, 120)
    await store.transition(ids[1], OrderStatus.EXPIRED, source="test")
    first = await store.stale_open_orders(60, limit=1)
    assert [o.id for o in first] == [ids[0]]
    rest = await store.stale_open_orders(60, limit=10, after_id=first[-1].id)
    assert [o.id for o in rest] == [ids[2]]
    assert fresh.id not in {o.id for o in await store.stale_open_orders(60)}
