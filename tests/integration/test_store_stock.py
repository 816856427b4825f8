"""Each store's carts and reservations on a real database (a SQLite file, a PostgreSQL
database): each release path, clean-up."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storefront.carts import MAX_QUANTITY, LineRequest, OutOfStock, QuantityError
from storefront.catalog import NewProduct
from storefront.evidence import EventOutcome
from storefront.orders import OrderStatus, timestamp
from storefront.paid_lines import LineAmounts
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
        [
            NewProduct("mug", "Mug", 1800, "eur", stock=4, physical=True),
            NewProduct("ebook", "E-book", 900, "eur"),
        ]
    )
    try:
        yield db
    finally:
        await db.close()


async def ids(store: AnyStore) -> dict[str, int]:
    return {r["slug"]: r["id"] for r in await store.fetch_all("SELECT id, slug FROM products")}


async def order_of(store: AnyStore, mugs: int, books: int = 1) -> int:
    product = await ids(store)
    lines = [
        LineRequest(product["mug"], "Mug", mugs, 1800),
        LineRequest(product["ebook"], "E-book", books, 900),
    ]
    order = await store.open_lines_order(lines, "eur", None, expires_at=int(time.time()) + 3600)
    assert order.amount_total == 1800 * mugs + 900 * books and order.order_number
    return order.id


@pytest.mark.parametrize("end", [OrderStatus.EXPIRED, OrderStatus.FAILED, OrderStatus.ABORTED])
async def test_every_end_without_payment_gives_the_units_back(
    store: AnyStore, end: OrderStatus
) -> None:
    order_id = await order_of(store, 3)
    assert (await store.stock_report())["mug"] == (4, 3, 3)
    if end is OrderStatus.FAILED:
        await store.transition(order_id, OrderStatus.PROCESSING, source="test")
    assert await store.transition(order_id, end, source="test") is not None
    assert (await store.stock_report())["mug"] == (4, 0, 0)
    states = {line["slug"]: line["reservation"] for line in await store.order_lines(order_id)}
    assert states == {"mug": "released", "ebook": "none"}


async def test_payment_sells_the_units_and_all_or_nothing_holds(store: AnyStore) -> None:
    paid = await order_of(store, 3)
    with pytest.raises(OutOfStock) as short:
        await order_of(store, 2)
    assert short.value.short == (("Mug", 1),)
    assert len(await store.fetch_all("SELECT id FROM orders")) == 1  # nothing of the second
    await store.transition(paid, OrderStatus.PAID, source="test")
    assert (await store.stock_report())["mug"] == (1, 0, 0)


async def test_a_payment_after_release_takes_units_only_if_left(store: AnyStore) -> None:
    late = await order_of(store, 3)
    await store.transition(late, OrderStatus.EXPIRED, source="test")
    other = await order_of(store, 2)
    move = await store.transition(late, OrderStatus.PAID, source="test")
    assert move is not None and move.flag is not None and "none is left of: Mug" in move.flag
    await store.transition(other, OrderStatus.PAID, source="test")
    assert (await store.stock_report())["mug"] == (2, 0, 0)


async def test_cart_limits_and_clean_up(store: AnyStore) -> None:
    product = await ids(store)
    token = await store.add_to_cart(None, product["mug"], 2)
    assert await store.add_to_cart(token, product["mug"], 3) == token
    with pytest.raises(QuantityError):
        await store.add_to_cart(token, product["mug"], MAX_QUANTITY)
    _, cart = await store.cart(token) or (None, None)
    assert cart is not None and cart.count == 5
    assert await store.delete_stale_carts(3600) == 0
    old = timestamp(time.time() - 7200)
    await store.execute("UPDATE carts SET updated_at = ?", (old,))
    assert await store.delete_stale_carts(3600) == 1
    assert await store.cart(token) is None
    assert await store.fetch_all("SELECT * FROM cart_items") == []


async def test_stripes_line_amounts_are_stored_on_payment_or_flag_the_order(
    store: AnyStore,
) -> None:
    # Two mugs and one e-book: 10 % off, 19 % tax on each line after its discount.
    lines = (LineAmounts(2, 3600, 360, 616, 3856), LineAmounts(1, 900, 90, 154, 964))
    paid = EventOutcome(
        status=OrderStatus.PAID,
        amount=3856 + 964,
        currency="eur",
        subtotal=4500,
        discount=450,
        shipping=0,
        tax=770,
        lines=lines,
    )
    good = await order_of(store, 2)
    assert (await store.apply_outcome(good, paid, "test"))[2]
    stored = await store.fetch_all(
        "SELECT amount_discount, amount_tax, amount_total FROM order_lines"
        " WHERE order_id = ? ORDER BY id",
        (good,),
    )
    assert [tuple(r) for r in stored] == [(360, 616, 3856), (90, 154, 964)]
    assert (await store.order_by_id(good)).flag_reason is None  # type: ignore[union-attr]

    # Line items that do not add up to the session: paid all the same (the money
    # matched), flagged, and nothing stored for the lines.
    bad = await order_of(store, 2)
    wrong = (LineAmounts(2, 3600, 300, 627, 3927), lines[1])
    result = await store.apply_outcome(bad, dataclasses.replace(paid, lines=wrong), "test")
    assert result[2]
    order = await store.order_by_id(bad)
    assert order is not None and order.status is OrderStatus.PAID
    assert order.flag_reason is not None and "line items refused" in order.flag_reason
    left = await store.fetch_all("SELECT amount_total FROM order_lines WHERE order_id = ?", (bad,))
    assert [r["amount_total"] for r in left] == [None, None]


async def test_line_amounts_learnt_after_the_move_are_stored_only_on_a_paid_order(
    store: AnyStore,
) -> None:
    lines = (LineAmounts(2, 3600, 0, 0, 3600), LineAmounts(1, 900, 0, 0, 900))
    paid = EventOutcome(
        status=OrderStatus.PAID,
        amount=4500,
        currency="eur",
        subtotal=4500,
        discount=0,
        shipping=0,
        tax=0,
    )
    pending = await order_of(store, 2)
    assert await store.record_lines(pending, dataclasses.replace(paid, lines=lines)) is None
    order_id = await order_of(store, 2)
    assert (await store.apply_outcome(order_id, paid, "test"))[2]  # a webhook: no lines
    assert await store.record_lines(order_id, dataclasses.replace(paid, lines=lines)) is None
    rows = await store.fetch_all(
        "SELECT order_id, amount_total FROM order_lines WHERE amount_total IS NOT NULL"
    )
    assert [(r["order_id"], r["amount_total"]) for r in rows] == [
        (order_id, 3600),
        (order_id, 900),
    ]
    reason = await store.record_lines(order_id, dataclasses.replace(paid, lines=lines[:1]))
    assert reason is not None and "1 line items for an order of 2" in reason
    flagged = await store.order_by_id(order_id)
    assert flagged is not None and flagged.flag_reason == reason
