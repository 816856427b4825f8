"""The PostgreSQL store: the shop's queries on an asyncpg pool.

The same steps as ``store.sqlite``, method for method and name for name, calling
the same rules (``orders``, ``evidence``). Each write is one transaction on one
pooled connection; a row is locked (``SELECT … FOR UPDATE``) before it is read
for a decision, and every update is still conditional on what was read, so of
several callers, in any number of processes, exactly one wins.

The transaction functions live in ``postgres_writes`` (as store.sqlite's
writer-thread functions do in store.sqlite). Porting a SQLite write: ``?`` becomes
``$1, $2, …``; ``cursor.rowcount`` becomes ``count(status)`` of ``execute``'s
``"UPDATE n"``; ``lastrowid`` becomes ``INSERT … RETURNING id``; a SELECT that
decides a write gets ``FOR UPDATE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import asyncpg

from storefront import migrations
from storefront.carts import LineRequest
from storefront.catalog import NewProduct, Product
from storefront.config import ConfigError, redacted
from storefront.db import SchemaError, check_revision
from storefront.evidence import EventOutcome, EventResult
from storefront.orders import Move, Order, OrderStatus, TimelineEntry, timestamp
from storefront.store import GLANCE_COLUMNS, LINES_DUE_STATUSES, RECONCILE_LOCK, OrderGlance
from storefront.store.postgres_backoffice import PostgresBackOffice
from storefront.store.postgres_cart import PostgresCart
from storefront.store.postgres_writes import (
    LOOKUPS,
    ORDER_SELECT,
    Conn,
    _attach_session,
    _open_order,
    _upsert_products,
    abort_without_session,
    check_and_move,
    count,
    flag,
    numbered,
    record_and_apply,
    transition,
)

# What a health check meets when the server is down, refuses, or the pool is closed.
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    AssertionError,
)


class DatabaseUnreachable(ConfigError):
    """The PostgreSQL server refused or did not answer (a wrong URL, or it is down)."""


class PostgresStore(PostgresCart, PostgresBackOffice):
    """``Store`` on a PostgreSQL database (see ``storefront.store.Store`` for the contract)."""

    def __init__(self, url: str, *, create: bool = False, max_connections: int = 10):
        self.url = url
        # True only for tools and tests: the running shop never migrates on its own.
        self.create = create
        self.max_connections = max_connections
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({redacted(self.url)!r})"

    async def open(self) -> None:
        """Open the pool on the serving loop; refuse a schema other than the head."""
        if self.create:
            await asyncio.to_thread(migrate, self.url)
        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.max_connections)
        try:
            async with self._pool.acquire() as conn:
                check_schema(await _revision(conn))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool (tests run their own SQL on it)."""
        assert self._pool is not None, "database is not open"
        return self._pool

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    # Database.fetch_one/fetch_all's call (``?`` placeholders, a tuple), for tools and
    # tests that read either backend; the store's own queries use $n directly.
    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> asyncpg.Record | None:
        """Run a read query (``?`` placeholders) and return its first row, if any."""
        return await self.pool.fetchrow(numbered(sql), *params)

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[asyncpg.Record]:
        """Run a read query (``?`` placeholders) and return all its rows."""
        return list(await self.pool.fetch(numbered(sql), *params))

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one write statement (``?`` placeholders) in its own transaction; rows hit."""
        return count(await self.pool.execute(numbered(sql), *params))

    # Health and leadership (several instances share this database).

    async def health(self) -> str | None:
        """None if the database answers and its schema is at head, else the reason."""
        try:
            async with self.pool.acquire(timeout=2.0) as conn:
                check_schema(await _revision(conn))
        except SchemaError as error:
            return str(error)
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            TimeoutError,
            AssertionError,
        ) as error:
            return f"database unreachable: {type(error).__name__}"
        return None

    @contextlib.asynccontextmanager
    async def exclusive(self, key: int = RECONCILE_LOCK) -> AsyncIterator[bool]:
        """Yield True if this instance holds the advisory lock ``key`` for the block.

        A session lock on one pooled connection: another instance's attempt
        yields False meanwhile, and a killed instance's lock ends with its session.
        """
        async with self.pool.acquire() as conn:
            mine = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
            try:
                yield mine
            finally:
                if mine:
                    await conn.execute("SELECT pg_advisory_unlock($1)", key)

    # Products.

    async def active_products(self) -> list[Product]:
        """Products on sale, in the order they were added."""
        rows = await self.pool.fetch("SELECT * FROM products WHERE active = 1 ORDER BY id")
        return [Product.from_row(r) for r in rows]

    async def product_by_slug(self, slug: str) -> Product | None:
        """The product with this slug, on sale or not."""
        if not _storable(slug):
            return None
        row = await self.pool.fetchrow("SELECT * FROM products WHERE slug = $1", slug)
        return Product.from_row(row) if row else None

    async def save_products(self, products: Sequence[NewProduct]) -> int:
        """Insert or update products by slug, all in one transaction; return how many."""
        async with self._transaction() as conn:
            return await _upsert_products(conn, products)

    # Orders: reads.

    async def order_by_id(self, order_id: int) -> Order | None:
        """The order with this row id, if any."""
        row = await self.pool.fetchrow(ORDER_SELECT + " WHERE o.id = $1", order_id)
        return Order.from_row(row) if row else None

    async def order_with_timeline(self, token: str) -> tuple[Order, list[TimelineEntry]] | None:
        """The order and its timeline in one query (the status poll runs this every 2 s)."""
        if not _storable(token):
            return None
        row = await self.pool.fetchrow(
            "SELECT o.*, p.name AS product_name, p.slug AS product_slug,"
            " (SELECT coalesce(json_agg(json_build_array(e.id, e.status, e.source,"
            "   e.created_at, e.note) ORDER BY e.id), '[]')"
            "  FROM order_events e WHERE e.order_id = o.id) AS timeline"
            " FROM orders o JOIN products p ON p.id = o.product_id WHERE o.token = $1",
            token,
        )
        if row is None:
            return None
        entries = json.loads(row["timeline"])
        return Order.from_row(row), [
            TimelineEntry(OrderStatus(status), source, created_at, note)
            for _, status, source, created_at, note in entries
        ]

    async def order_glance(self, token: str) -> OrderGlance | None:
        """A few columns of the order with this token: one read by its unique index."""
        if not _storable(token):
            return None
        row = await self.pool.fetchrow(
            f"SELECT {GLANCE_COLUMNS} FROM orders WHERE token = $1", token
        )
        return OrderGlance.from_row(row) if row else None

    async def find_order(
        self,
        *,
        session_id: str | None = None,
        order_token: str | None = None,
        payment_intent: str | None = None,
    ) -> Order | None:
        """The committed order an event is about, looked up as ``find_order_id`` does."""
        for column, value in zip(LOOKUPS, (session_id, order_token, payment_intent), strict=True):
            if value and _storable(value):
                row = await self.pool.fetchrow(ORDER_SELECT + f" WHERE o.{column} = $1", value)
                if row is not None:
                    return Order.from_row(row)
        return None

    async def is_known(
        self, *, order_token: str | None = None, payment_intent: str | None = None
    ) -> bool:
        """Whether a committed order carries this token or payment intent."""
        for column, value in (("token", order_token), ("payment_intent", payment_intent)):
            if (
                value
                and _storable(value)
                and await self.pool.fetchrow(f"SELECT 1 FROM orders WHERE {column} = $1", value)
            ):
                return True
        return False

    async def stale_open_orders(
        self, older_than_seconds: float, limit: int = 100, after_id: int = 0
    ) -> list[Order]:
        """Pending or processing orders untouched for longer than the threshold, by id."""
        rows = await self.pool.fetch(
            ORDER_SELECT + " WHERE o.status IN ($1, $2)"
            " AND o.updated_at < $3 AND o.id > $4 ORDER BY o.id LIMIT $5",
            OrderStatus.PENDING.value,
            OrderStatus.PROCESSING.value,
            timestamp(time.time() - older_than_seconds),
            after_id,
            limit,
        )
        return [Order.from_row(r) for r in rows]

    async def line_items_due(
        self, limit: int = 100, *, after_id: int = 0, order_ids: Sequence[int] | None = None
    ) -> list[Order]:
        """Orders whose line items are due from Stripe, oldest (lowest id) first."""
        if order_ids is not None and not order_ids:
            return []
        rows = await self.pool.fetch(
            ORDER_SELECT + " WHERE o.status IN ($1, $2, $3) AND o.stripe_session_id IS NOT NULL"
            " AND o.flagged_at IS NULL AND o.amount_paid IS NOT NULL"
            # NULL: an order from before revision 0005, whose lines were never priced.
            " AND o.shipping_offered IS NOT NULL AND o.id > $4"
            " AND ($5::bigint[] IS NULL OR o.id = ANY($5::bigint[])) AND EXISTS"
            " (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.amount_total IS NULL)"
            " ORDER BY o.id LIMIT $6",
            *LINES_DUE_STATUSES,
            after_id,
            None if order_ids is None else list(order_ids),
            limit,
        )
        return [Order.from_row(r) for r in rows]

    # Orders: each method is one transaction.

    async def open_order(
        self,
        product_id: int,
        unit_amount: int,
        currency: str,
        attempt: str | None,
        expires_at: int | None = None,
    ) -> Order:
        """Insert a pending order, or return the pending one this attempt already made."""
        async with self._transaction() as conn:
            row = await _open_order(
                conn, None, product_id, unit_amount, currency, attempt, expires_at, None
            )
        return Order.from_row(row)

    async def open_lines_order(
        self,
        lines: Sequence[LineRequest],
        currency: str,
        attempt: str | None,
        expires_at: int | None = None,
        cart_id: int | None = None,
    ) -> Order:
        """Insert a pending order of several lines, reserving their stock all or nothing."""
        async with self._transaction() as conn:
            row = await _open_order(
                conn, lines, lines[0].product_id, 0, currency, attempt, expires_at, cart_id
            )
        return Order.from_row(row)

    async def attach_session(self, order_id: int, session_id: str) -> bool:
        """Remember which Checkout Session pays for the order; False if the order moved on."""
        async with self._transaction() as conn:
            return await _attach_session(conn, order_id, session_id)

    async def abort_without_session(
        self, order_id: int, *, untouched_for: float, source: str
    ) -> bool:
        """Abort a pending order that has no session and no checkout call in flight."""
        async with self._transaction() as conn:
            return await abort_without_session(
                conn, order_id, untouched_for=untouched_for, source=source
            )

    async def flag(self, order_id: int, reason: str) -> None:
        """Flag the order for the shopkeeper; the first reason stays on the order."""
        async with self._transaction() as conn:
            await flag(conn, order_id, reason)

    async def transition(
        self, order_id: int, new: OrderStatus, *, source: str, note: str | None = None
    ) -> Move | None:
        """Move an order to ``new`` if the state machine allows; the Move, or None."""
        async with self._transaction() as conn:
            return await transition(conn, order_id, new, source=source, note=note)

    async def apply_outcome(
        self, order_id: int, outcome: EventOutcome, source: str
    ) -> tuple[EventResult, str | None, bool]:
        """Cross-check Stripe's word against the order, then move it or flag it."""
        async with self._transaction() as conn:
            return await check_and_move(conn, order_id, outcome, source, None)

    async def record_and_apply(
        self, event_id: str, event_type: str, outcome: EventOutcome | None
    ) -> tuple[EventResult, int | None, str | None]:
        """Record a webhook event id and apply its outcome, in one transaction."""
        async with self._transaction() as conn:
            return await record_and_apply(conn, event_id, event_type, outcome)


def _storable(value: str) -> bool:
    """False for text PostgreSQL cannot hold (a NUL byte): no row can match it.

    SQLite compares such text and finds nothing; asyncpg would raise instead, and
    a probe like ``/orders/<token>%00`` must get the same 404 on both backends.
    """
    return "\x00" not in value


# Schema: the revision Alembic recorded, against this shop's head.


async def _revision(conn: Conn) -> str | None:
    if not await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
        return None
    return await conn.fetchval("SELECT version_num FROM alembic_version")


def check_schema(revision: str | None) -> None:
    """Raise SchemaError, in one line saying what to do, unless ``revision`` is the head."""
    check_revision(revision)


def migrate(url: str) -> str:
    """Bring the database at ``url`` to the head revision; return the revision it was at."""
    engine = migrations.engine(migrations.sync_url(url))
    try:
        with engine.connect() as conn:
            exists = conn.exec_driver_sql(
                "SELECT to_regclass('alembic_version') IS NOT NULL"
            ).scalar()
            revision = (
                conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
                if exists
                else None
            )
    finally:
        engine.dispose()
    if revision is not None and revision not in migrations.revisions():
        raise SchemaError(
            f"database schema {revision} is newer than this shop's {migrations.HEAD}: "
            "run the shop that wrote it"
        )
    migrations.upgrade(migrations.sync_url(url))
    return revision or "empty"


async def require_schema(url: str) -> None:
    """Raise SchemaError unless the database at ``url`` is at the head revision.

    An unreachable server is a ConfigError too: one line naming it, password hidden.
    """
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except _UNREACHABLE as error:
        raise DatabaseUnreachable(
            f"cannot reach the database at {redacted(url)}: {type(error).__name__}: {error}"
        ) from None
    try:
        check_schema(await _revision(conn))
    finally:
        await conn.close()
