"""Each store's carts and reservations on a real database (a SQLite file, a PostgreSQL
database): each release path, clean-up."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storefront.carts import MAX_QUANTITY, LineRequest, OutOfStock, QuantityError
from storefront.catalog import NewProduct
from storefront.orders import OrderStatus, timestamp
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
