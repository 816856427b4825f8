"""Each store on a real database (a SQLite file, a PostgreSQL database): every query,
its conditions and its transactions, the same tests on both backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storefront.catalog import NewProduct
from storefront.db import SchemaError
from storefront.evidence import EventOutcome, EventResult
from storefront.orders import OrderStatus, timestamp
from storefront.store import Store
from storefront.store.postgres import PostgresStore
from storefront.store.sqlite import SQLiteStore

AnyStore = SQLiteStore | PostgresStore


@pytest.fixture
async def store(tmp_path: Path, database_url: str | None) -> AsyncIterator[AnyStore]:
    if database_url:
        db: AnyStore = PostgresStore(database_url)
    else:
        db = SQLiteStore(tmp_path / "store.sqlite3")
    await db.open()
    await db.save_products(
        [NewProduct("mug", "Mug", 1800, "eur"), NewProduct("old", "Old", 900, "eur", active=False)]
    )
    try:
        yield db
    finally:
        await db.close()


async def set_updated_at(store: AnyStore, order_id: int, seconds_ago: float) -> None:
    stamp = timestamp(time.time() - seconds_ago)
    await store.execute("UPDATE orders SET updated_at = ? WHERE id = ?", (stamp, order_id))


def paid(session_id: str, amount: int = 1800) -> EventOutcome:
    return EventOutcome(
        status=OrderStatus.PAID,
        session_id=session_id,
        payment_intent="pi_1",
        amount=amount,
        currency="eur",
    )


async def test_it_is_a_store(store: AnyStore) -> None:
    assert isinstance(store, Store)


async def test_products_upsert_by_slug_and_only_active_ones_are_listed(
    store: AnyStore,
) -> None:
    assert [p.slug for p in await store.active_products()] == ["mug"]
    assert await store.save_products([NewProduct("mug", "Big mug", 2000, "eur")]) == 1
    mug = await store.product_by_slug("mug")
    assert mug is not None and (mug.name, mug.unit_amount) == ("Big mug", 2000)
    old = await store.product_by_slug("old")
    assert old is not None and not old.active
    assert await store.product_by_slug("none") is None


async def test_a_second_click_finds_the_same_pending_order(store: AnyStore) -> None:
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
    store: AnyStore,
) -> None:
    order = await store.open_order(1, 1800, "eur", None)
    assert await store.attach_session(order.id, "cs_1")
    assert await store.attach_session(order.id, "cs_1")  # the same session again
    assert not await store.attach_session(order.id, "cs_2")
    aborted = await store.open_order(1, 1800, "eur", None)
    assert await store.abort_without_session(aborted.id, untouched_for=0, source="checkout")
    assert not await store.attach_session(aborted.id, "cs_3")


async def test_abort_waits_until_the_checkout_is_untouched_for_long_enough(
    store: AnyStore,
) -> None:
    order = await store.open_order(1, 1800, "eur", None)
    assert not await store.abort_without_session(order.id, untouched_for=60, source="reconcile")
    await set_updated_at(store, order.id, 61)
    assert await store.abort_without_session(order.id, untouched_for=60, source="reconcile")
    now = await store.order_by_id(order.id)
    assert now is not None and now.status is OrderStatus.ABORTED


async def test_of_concurrent_moves_exactly_one_wins(store: AnyStore) -> None:
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


async def test_an_event_applies_once_and_its_repeat_changes_nothing(store: AnyStore) -> None:
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


async def test_a_mismatch_flags_and_the_first_reason_stays(store: AnyStore) -> None:
    order = await store.open_order(1, 1800, "eur", None)
    await store.attach_session(order.id, "cs_1")
    result, reason, moved = await store.apply_outcome(order.id, paid("cs_1", 1), "reconcile")
    assert (result, moved) == (EventResult.FLAGGED, False)
    assert reason is not None and reason.startswith("reconcile: paid refused")
    await store.flag(order.id, "a later reason")
    now = await store.order_by_id(order.id)
    assert now is not None and now.status is OrderStatus.PENDING
    assert now.flag_reason == reason and now.flagged


async def test_find_order_prefers_the_session_then_the_token(store: AnyStore) -> None:
    a = await store.open_order(1, 1800, "eur", None)
    b = await store.open_order(1, 1800, "eur", None)
    await store.attach_session(a.id, "cs_a")
    found = await store.find_order(session_id="cs_a", order_token=b.token)
    assert found is not None and found.id == a.id
    found = await store.find_order(session_id="cs_none", order_token=b.token)
    assert found is not None and found.id == b.id
    assert await store.find_order() is None


async def test_stale_open_orders_page_through_by_id(store: AnyStore) -> None:
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


async def test_the_health_check_names_a_schema_behind_the_head(store: AnyStore) -> None:
    assert await store.health() is None
    await store.execute("UPDATE alembic_version SET version_num = '0001'")
    problem = await store.health()
    assert problem is not None and "storefront migrate" in problem


async def test_a_store_refuses_a_schema_behind_the_head(
    tmp_path: Path, database_url: str | None
) -> None:
    store = PostgresStore(database_url) if database_url else SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    await store.execute("UPDATE alembic_version SET version_num = '0001'")
    await store.close()
    if database_url:
        again: AnyStore = PostgresStore(database_url)
    else:
        again = SQLiteStore(tmp_path / "s.sqlite3", create=False)
    with pytest.raises(SchemaError, match=r"this shop needs .*run `storefront migrate`"):
        await again.open()


# Several processes on one PostgreSQL: each PostgresStore has its own pool, as each
# shop instance does, so these races cross connections the way instances do.


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_stores_racing_one_move_exactly_one_wins(
    store: AnyStore, database_url: str
) -> None:
    other = PostgresStore(database_url)
    await other.open()
    try:
        for round_ in range(5):
            order = await store.open_order(1, 1800, "eur", None)
            await store.attach_session(order.id, f"cs_{round_}")
            # Distinct events saying the same thing: one moves the order, the rest find
            # it moved already (no second timeline row, no second effect).
            results = await asyncio.gather(
                *(
                    (store, other)[i % 2].record_and_apply(
                        f"evt_{round_}_{i}", "checkout.session.completed", paid(f"cs_{round_}")
                    )
                    for i in range(8)
                )
            )
            assert [r[0] for r in results].count(EventResult.APPLIED) == 1
            other_order = await other.open_order(1, 1800, "eur", None)
            moves = await asyncio.gather(
                *(
                    (other, store)[i % 2].transition(
                        other_order.id, OrderStatus.EXPIRED, source=f"s{i}"
                    )
                    for i in range(8)
                )
            )
            assert sum(m is not None for m in moves) == 1
            for token in (order.token, other_order.token):
                found = await other.order_with_timeline(token)
                assert found is not None and len(found[1]) == 2
    finally:
        await other.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_stores_count_one_event_id_once(store: AnyStore, database_url: str) -> None:
    other = PostgresStore(database_url)
    await other.open()
    try:
        order = await store.open_order(1, 1800, "eur", None)
        await store.attach_session(order.id, "cs_1")
        results = await asyncio.gather(
            *(
                (store, other)[i % 2].record_and_apply(
                    "evt_same", "checkout.session.completed", paid("cs_1")
                )
                for i in range(10)
            )
        )
        assert sorted(r[0].value for r in results) == sorted(
            [EventResult.APPLIED.value] + [EventResult.DUPLICATE.value] * 9
        )
        same = await asyncio.gather(
            store.open_order(1, 1800, "eur", "attempt-x"),
            other.open_order(1, 1800, "eur", "attempt-x"),
        )
        assert same[0].id == same[1].id
    finally:
        await other.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_reconcile_lock_has_one_holder_across_stores(
    store: AnyStore, database_url: str
) -> None:
    other = PostgresStore(database_url)
    await other.open()
    try:
        async with store.exclusive() as mine:
            assert mine
            async with other.exclusive() as theirs:
                assert not theirs
        # Released with the block: the other instance takes the next pass.
        async with other.exclusive() as theirs:
            assert theirs
    finally:
        await other.close()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_has_one_process_so_its_store_always_leads(store: AnyStore) -> None:
    async with store.exclusive() as mine:
        assert mine


async def test_text_with_a_nul_byte_matches_nothing_on_either_backend(store: AnyStore) -> None:
    # PostgreSQL cannot hold NUL in text; a probe with one must find nothing, not fail.
    order = await store.open_order(1, 1800, "eur", None)
    assert await store.product_by_slug("mug\x00") is None
    assert await store.order_with_timeline(order.token + "\x00") is None
    assert await store.find_order(session_id="cs\x00", order_token=order.token + "\x00") is None
    assert not await store.is_known(order_token="\x00", payment_intent="pi\x00")
