"""The SQLite store: the shop's queries on ``Database``'s writer thread and reader.

Writes are plain functions of a ``sqlite3.Connection`` that ``Database.write``
runs whole inside ``BEGIN IMMEDIATE … COMMIT`` on one thread (one trip per
transaction; bench/STORE.md). The SQL is portable except where marked.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from storefront import evidence
from storefront.carts import LineRequest
from storefront.catalog import NewProduct, Product
from storefront.db import Database, DatabaseGone, SchemaError, check_revision
from storefront.evidence import EventOutcome, EventResult
from storefront.orders import (
    Move,
    Order,
    OrderStatus,
    TimelineEntry,
    can_transition,
    is_recovery,
    new_token,
    timestamp,
)
from storefront.store import GLANCE_COLUMNS, LINES_DUE_STATUSES, OrderGlance
from storefront.store.backoffice import (
    BackOfficeQueries,
    enqueue_email,
    note_refunded,
    note_webhook_result,
)
from storefront.store.sqlite_cart import (
    CartQueries,
    empty_cart,
    insert_lines,
    order_number_for,
    record_line_amounts,
    settle_stock,
)

_ORDER_SELECT = """
    SELECT o.*, p.name AS product_name, p.slug AS product_slug
    FROM orders o JOIN products p ON p.id = o.product_id
"""

_GLANCE = f"SELECT {GLANCE_COLUMNS} FROM orders WHERE token = ?"

# How an event finds its order, in this order of trust.
_LOOKUPS = ("stripe_session_id", "token", "payment_intent")


class SQLiteStore(CartQueries, BackOfficeQueries, Database):
    """``Store`` on one SQLite file (see ``storefront.store.Store`` for the contract)."""

    _glancer: sqlite3.Connection | None = None

    async def health(self) -> str | None:
        """None if the file is the one opened and its schema is at head, else the reason."""
        try:
            self._check_file()
            rows = await self.fetch_all("SELECT version_num FROM alembic_version")
            check_revision(rows[0][0] if rows else None)
        except (SchemaError, DatabaseGone) as error:
            return str(error)
        except (sqlite3.Error, AssertionError) as error:
            return f"database unreadable: {type(error).__name__}"
        return None

    @contextlib.asynccontextmanager
    async def exclusive(self, key: int = 0) -> AsyncIterator[bool]:
        """Always True: one SQLite file has one shop process, so no other instance runs."""
        yield True

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one write statement in its own transaction; the rows it changed."""
        args = tuple(params)
        return await self.write(lambda conn: conn.execute(sql, args).rowcount)

    async def active_products(self) -> list[Product]:
        """Products on sale, in the order they were added."""
        rows = await self.fetch_all("SELECT * FROM products WHERE active = 1 ORDER BY id")
        return [Product.from_row(r) for r in rows]

    async def product_by_slug(self, slug: str) -> Product | None:
        """The product with this slug, on sale or not."""
        row = await self.fetch_one("SELECT * FROM products WHERE slug = ?", (slug,))
        return Product.from_row(row) if row else None

    async def save_products(self, products: Sequence[NewProduct]) -> int:
        """Insert or update products by slug, all in one transaction; return how many."""
        return await self.write(_upsert_products, products)

    async def order_by_id(self, order_id: int) -> Order | None:
        """The order with this row id, if any."""
        row = await self.fetch_one(_ORDER_SELECT + " WHERE o.id = ?", (order_id,))
        return Order.from_row(row) if row else None

    async def order_with_timeline(self, token: str) -> tuple[Order, list[TimelineEntry]] | None:
        """The order and its timeline in one query (the status poll runs this every 2 s).

        SQLite-specific: json_group_array (PostgreSQL: json_agg of json_build_array).
        """
        row = await self.fetch_one(
            "SELECT o.*, p.name AS product_name, p.slug AS product_slug,"
            " (SELECT json_group_array(json_array(e.id, e.status, e.source, e.created_at, e.note))"
            "  FROM order_events e WHERE e.order_id = o.id) AS timeline"
            " FROM orders o JOIN products p ON p.id = o.product_id WHERE o.token = ?",
            (token,),
        )
        if row is None:
            return None
        # json_group_array promises no order: sort by the entries' ids.
        entries = sorted(json.loads(row["timeline"]))
        return Order.from_row(row), [
            TimelineEntry(OrderStatus(status), source, created_at, note)
            for _, status, source, created_at, note in entries
        ]

    async def open(self) -> None:
        """Open the database, and the status polls' own connection."""
        await super().open()
        self._glancer = _connect_glancer(self.path)

    async def close(self) -> None:
        """Close every connection."""
        if self._glancer is not None:
            self._glancer.close()
            self._glancer = None
        await super().close()

    async def order_glance(self, token: str) -> OrderGlance | None:
        """A few columns of the order with this token: one read by its unique index.

        Read on the event loop itself: one lookup by a unique index on a warm
        page cache costs a few microseconds, far less than the two thread
        hand-offs of the shared reader, and status polls are most requests. A
        busy database (a checkpoint) fails at once and the read takes the
        reader's thread instead. ``fetchall`` ends the statement, so no read
        transaction stays open to pin an old snapshot.
        """
        if self._glancer is not None:
            try:
                rows = self._glancer.execute(_GLANCE, (token,)).fetchall()
            except sqlite3.OperationalError:
                rows = None
            if rows is not None:
                return OrderGlance.from_row(rows[0]) if rows else None
        row = await self.fetch_one(_GLANCE, (token,))
        return OrderGlance.from_row(row) if row else None

    async def find_order(
        self,
        *,
        session_id: str | None = None,
        order_token: str | None = None,
        payment_intent: str | None = None,
    ) -> Order | None:
        """The committed order an event is about, looked up as ``find_order_id`` does."""
        for column, value in zip(_LOOKUPS, (session_id, order_token, payment_intent), strict=True):
            if value:
                row = await self.fetch_one(_ORDER_SELECT + f" WHERE o.{column} = ?", (value,))
                if row is not None:
                    return Order.from_row(row)
        return None

    async def is_known(
        self, *, order_token: str | None = None, payment_intent: str | None = None
    ) -> bool:
        """Whether a committed order carries this token or payment intent."""
        for column, value in (("token", order_token), ("payment_intent", payment_intent)):
            if value and await self.fetch_one(
                f"SELECT 1 FROM orders WHERE {column} = ?", (value,)
            ):
                return True
        return False

    async def stale_open_orders(
        self, older_than_seconds: float, limit: int = 100, after_id: int = 0
    ) -> list[Order]:
        """Pending or processing orders untouched for longer than the threshold, by id.

        Paged by ``after_id`` so a caller can walk them all: orders that stay
        processing for days must not hide the rest behind a fixed first page.
        """
        rows = await self.fetch_all(
            _ORDER_SELECT + " WHERE o.status IN (?, ?)"
            " AND o.updated_at < ? AND o.id > ? ORDER BY o.id LIMIT ?",
            (
                OrderStatus.PENDING.value,
                OrderStatus.PROCESSING.value,
                timestamp(time.time() - older_than_seconds),
                after_id,
                limit,
            ),
        )
        return [Order.from_row(r) for r in rows]

    async def line_items_due(
        self, limit: int = 100, *, after_id: int = 0, order_ids: Sequence[int] | None = None
    ) -> list[Order]:
        """Orders whose line items are due from Stripe, oldest (lowest id) first."""
        if order_ids is not None and not order_ids:
            return []
        only = ""
        if order_ids is not None:
            only = f" AND o.id IN ({', '.join('?' * len(order_ids))})"
        rows = await self.fetch_all(
            _ORDER_SELECT + " WHERE o.status IN (?, ?, ?) AND o.stripe_session_id IS NOT NULL"
            " AND o.flagged_at IS NULL AND o.amount_paid IS NOT NULL"
            # NULL: an order from before revision 0005, whose lines were never priced.
            " AND o.shipping_offered IS NOT NULL AND o.id > ?" + only + " AND EXISTS"
            " (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.amount_total IS NULL)"
            " ORDER BY o.id LIMIT ?",
            (*LINES_DUE_STATUSES, after_id, *(order_ids or ()), limit),
        )
        return [Order.from_row(r) for r in rows]

    async def open_order(
        self,
        product_id: int,
        unit_amount: int,
        currency: str,
        attempt: str | None,
        expires_at: int | None = None,
    ) -> Order:
        """Insert a pending order, or return the pending one this attempt already made.

        ``expires_at`` is stored with a new order only: a second click must send
        Stripe the very same parameters, or its idempotency key refuses them.
        """
        row = await self.write(
            _open_order, None, product_id, unit_amount, currency, attempt, expires_at, None
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
        """Insert a pending order of several lines, reserving their stock all or nothing.

        Raises ``OutOfStock`` (nothing written) when a counted product has too
        few left; a second click of the same form finds the order it made.
        """
        row = await self.write(
            _open_order, lines, lines[0].product_id, 0, currency, attempt, expires_at, cart_id
        )
        return Order.from_row(row)

    async def attach_session(self, order_id: int, session_id: str) -> bool:
        """Remember which Checkout Session pays for the order; False if the order moved on.

        Only a pending order without another session takes it: an order aborted
        while its checkout was in flight must not send the shopper to pay.
        """
        return bool(await self.write(_attach_session, order_id, session_id))

    async def abort_without_session(
        self, order_id: int, *, untouched_for: float, source: str
    ) -> bool:
        """Abort a pending order that has no session and no checkout call in flight."""
        return bool(
            await self.write(
                abort_without_session, order_id, untouched_for=untouched_for, source=source
            )
        )

    async def flag(self, order_id: int, reason: str) -> None:
        """Flag the order for the shopkeeper; the first reason stays on the order."""
        await self.write(flag, order_id, reason)

    async def transition(
        self, order_id: int, new: OrderStatus, *, source: str, note: str | None = None
    ) -> Move | None:
        """Move an order to ``new`` if the state machine allows; the Move, or None."""
        return await self.write(transition, order_id, new, source=source, note=note)

    async def apply_outcome(
        self, order_id: int, outcome: EventOutcome, source: str
    ) -> tuple[EventResult, str | None, bool]:
        """Cross-check Stripe's word against the order, then move it or flag it."""
        return await self.write(check_and_move, order_id, outcome, source, None)

    async def record_and_apply(
        self, event_id: str, event_type: str, outcome: EventOutcome | None
    ) -> tuple[EventResult, int | None, str | None]:
        """Record a webhook event id and apply its outcome, in one transaction."""
        return await self.write(record_and_apply, event_id, event_type, outcome)


def _connect_glancer(path: Any) -> sqlite3.Connection:
    # Read-only and never waiting: it runs on the event loop (see order_glance).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only = ON")
    conn.execute("PRAGMA busy_timeout = 0")
    return conn


# Writer-thread functions: each runs inside one Database.write transaction.


def _upsert_products(conn: sqlite3.Connection, products: Sequence[NewProduct]) -> int:
    for p in products:
        conn.execute(
            "INSERT INTO products (slug, name, description, unit_amount, currency, image,"
            " active, created_at, stock, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (slug) DO UPDATE SET name = excluded.name,"
            " description = excluded.description, unit_amount = excluded.unit_amount,"
            " currency = excluded.currency, image = excluded.image,"
            " active = excluded.active, stock = excluded.stock, kind = excluded.kind",
            (
                p.slug,
                p.name,
                p.description,
                p.unit_amount,
                p.currency,
                p.image,
                int(p.active),
                timestamp(),
                p.stock,
                "physical" if p.physical else "digital",
            ),
        )
    return len(products)


def _open_order(
    conn: sqlite3.Connection,
    lines: Sequence[LineRequest] | None,
    product_id: int,
    unit_amount: int,
    currency: str,
    attempt: str | None,
    expires_at: int | None,
    cart_id: int | None,
) -> sqlite3.Row:
    existing = None
    if attempt:
        existing = conn.execute(
            "SELECT id, product_id, status FROM orders WHERE checkout_attempt = ?", (attempt,)
        ).fetchone()
    if (
        existing
        and existing["product_id"] == product_id
        and existing["status"] == OrderStatus.PENDING
    ):
        order_id = int(existing["id"])
        # A checkout call starts again now: the reconciler counts its time in
        # flight from updated_at, so it must not abort the order meanwhile.
        conn.execute("UPDATE orders SET updated_at = ? WHERE id = ?", (timestamp(), order_id))
    else:
        # A form whose attempt already led somewhere else starts afresh.
        if lines is None:
            name = conn.execute("SELECT name FROM products WHERE id = ?", (product_id,))
            lines = [LineRequest(product_id, name.fetchone()["name"], 1, unit_amount)]
        subtotal = sum(line.unit_amount * line.quantity for line in lines)
        now = timestamp()
        # SQLite-specific: lastrowid (PostgreSQL: INSERT … RETURNING id).
        cursor = conn.execute(
            "INSERT INTO orders (token, product_id, quantity, amount_total, currency,"
            " checkout_attempt, expires_at, created_at, updated_at, order_number,"
            " amount_subtotal, cart_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new_token(),
                product_id,
                sum(line.quantity for line in lines),
                subtotal,
                currency,
                None if existing else attempt,
                expires_at,
                now,
                now,
                order_number_for(conn),
                subtotal,
                cart_id,
            ),
        )
        order_id = int(cursor.lastrowid or 0)
        # Reserves the stock, or raises OutOfStock and the whole order rolls back.
        insert_lines(conn, order_id, lines)
        _record(conn, order_id, OrderStatus.PENDING, "checkout", None)
    # Read back in the same trip: the checkout needs the whole order at once.
    row: sqlite3.Row = conn.execute(_ORDER_SELECT + " WHERE o.id = ?", (order_id,)).fetchone()
    return row


def _attach_session(conn: sqlite3.Connection, order_id: int, session_id: str) -> bool:
    cursor = conn.execute(
        "UPDATE orders SET stripe_session_id = ?, updated_at = ?"
        " WHERE id = ? AND status = ?"
        " AND (stripe_session_id IS NULL OR stripe_session_id = ?)",
        (session_id, timestamp(), order_id, OrderStatus.PENDING.value, session_id),
    )
    return cursor.rowcount == 1


def abort_without_session(
    conn: sqlite3.Connection, order_id: int, *, untouched_for: float, source: str
) -> bool:
    """Abort a pending order that has no session and no checkout call in flight.

    ``untouched_for`` seconds must have passed since the checkout last started
    (updated_at); the check and the move are one conditional update, so a
    session attached a moment ago, or a second click, wins.
    """
    now = time.time()
    cursor = conn.execute(
        "UPDATE orders SET status = ?, updated_at = ?"
        " WHERE id = ? AND status = ? AND stripe_session_id IS NULL AND updated_at <= ?",
        (
            OrderStatus.ABORTED.value,
            timestamp(now),
            order_id,
            OrderStatus.PENDING.value,
            timestamp(now - max(untouched_for, 0.0)),
        ),
    )
    if cursor.rowcount != 1:
        return False
    settle_stock(conn, order_id, OrderStatus.ABORTED)
    _record(conn, order_id, OrderStatus.ABORTED, source, None)
    return True


def flag(conn: sqlite3.Connection, order_id: int, reason: str) -> None:
    """Flag the order for the shopkeeper; the first reason stays on the order."""
    now = timestamp()
    conn.execute(
        "UPDATE orders SET flag_reason = coalesce(flag_reason, ?),"
        " flagged_at = coalesce(flagged_at, ?),"
        # Newly flagged is a change the receipt shows: its poll version must move.
        " updated_at = CASE WHEN flagged_at IS NULL THEN ? ELSE updated_at END WHERE id = ?",
        (reason[:500], now, now, order_id),
    )


def transition(
    conn: sqlite3.Connection,
    order_id: int,
    new: OrderStatus,
    *,
    source: str,
    stripe_event_id: str | None = None,
    payment_intent: str | None = None,
    customer_email: str | None = None,
    session_id: str | None = None,
    note: str | None = None,
    paid: EventOutcome | None = None,
) -> Move | None:
    """Move an order to ``new`` if the state machine allows; the Move, or None.

    Runs inside ``Database.write`` (whose write lock makes the read and the
    update one step), and the update is still conditional on the status read,
    so of several callers exactly one wins. A recovery (Stripe took money for
    an order we had given up on) moves and flags the order.
    """
    row = conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        return None
    before = OrderStatus(row["status"])
    if not can_transition(before, new):
        return None
    reason = None
    if is_recovery(before, new):
        reason = f"Stripe reports {new.value} for an order that was {before.value}"
    cursor = conn.execute(
        "UPDATE orders SET status = ?,"
        " payment_intent = coalesce(?, payment_intent),"
        " customer_email = coalesce(?, customer_email),"
        " stripe_session_id = coalesce(stripe_session_id, ?),"
        " updated_at = ?"
        " WHERE id = ? AND status = ?",
        (
            new.value,
            payment_intent,
            customer_email,
            session_id,
            timestamp(),
            order_id,
            before.value,
        ),
    )
    if cursor.rowcount != 1:
        return None
    lines_reason = None
    if paid is not None and new in (OrderStatus.PAID, OrderStatus.PROCESSING):
        _record_totals(conn, order_id, paid)
        lines_reason = record_line_amounts(conn, order_id, paid)
    stock_reason = settle_stock(conn, order_id, new)
    if new is OrderStatus.PAID:
        cart = conn.execute("SELECT cart_id FROM orders WHERE id = ?", (order_id,)).fetchone()
        if cart["cart_id"] is not None:
            empty_cart(conn, cart["cart_id"])
    # Both reasons, when a late payment also finds its units sold to someone else.
    reason = "; ".join(r for r in (reason, stock_reason, lines_reason) if r) or None
    if reason is not None:
        flag(conn, order_id, reason)
    _record(conn, order_id, new, source, stripe_event_id, note or reason)
    if new is OrderStatus.PAID:
        # The emails commit with the payment, or not at all (the outbox drains them).
        enqueue_email(conn, order_id, "confirmation")
        enqueue_email(conn, order_id, "paid_notice")
    return Move(before, new, reason)


def _record_totals(conn: sqlite3.Connection, order_id: int, paid: EventOutcome) -> None:
    # What Stripe says the shopper paid; evidence.mismatch has checked its arithmetic.
    if paid.amount is None:
        return
    address = json.dumps(dict(paid.shipping_address)) if paid.shipping_address else None
    conn.execute(
        "UPDATE orders SET amount_paid = ?, amount_discount = coalesce(?, amount_discount),"
        " amount_shipping = coalesce(?, amount_shipping), amount_tax = coalesce(?, amount_tax),"
        " shipping_name = coalesce(?, shipping_name),"
        " shipping_address = coalesce(?, shipping_address) WHERE id = ?",
        (
            paid.amount,
            paid.discount,
            paid.shipping,
            paid.tax,
            paid.shipping_name,
            address,
            order_id,
        ),
    )


def _record(
    conn: sqlite3.Connection,
    order_id: int,
    status: OrderStatus,
    source: str,
    stripe_event_id: str | None,
    note: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO order_events (order_id, status, source, stripe_event_id, note, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (order_id, status.value, source, stripe_event_id, note, timestamp()),
    )


def find_order_id(
    conn: sqlite3.Connection,
    *,
    session_id: str | None = None,
    order_token: str | None = None,
    payment_intent: str | None = None,
) -> int | None:
    """Find the order an event is about, by session id, token or payment intent."""
    for column, value in zip(_LOOKUPS, (session_id, order_token, payment_intent), strict=True):
        if value:
            row = conn.execute(f"SELECT id FROM orders WHERE {column} = ?", (value,)).fetchone()
            if row is not None:
                return int(row["id"])
    return None


def record_webhook_event(conn: sqlite3.Connection, event_id: str, event_type: str) -> bool:
    """Remember an event id; False if it was seen before (a duplicate delivery)."""
    cursor = conn.execute(
        "INSERT INTO webhook_events (id, type, received_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (event_id, event_type, timestamp()),
    )
    return cursor.rowcount == 1


def record_and_apply(
    conn: sqlite3.Connection, event_id: str, event_type: str, outcome: EventOutcome | None
) -> tuple[EventResult, int | None, str | None]:
    """Record the event id and apply its outcome: the id is recorded only with its effect."""
    if not record_webhook_event(conn, event_id, event_type):
        return EventResult.DUPLICATE, None, None
    order_id = None
    if outcome is not None:
        order_id = find_order_id(
            conn,
            session_id=outcome.session_id,
            order_token=outcome.order_token,
            payment_intent=outcome.payment_intent,
        )
    result, reason = EventResult.IGNORED, None
    if outcome is not None and order_id is not None:
        result, reason, _ = check_and_move(conn, order_id, outcome, "webhook", event_id)
    note_webhook_result(conn, event_id, order_id, result)
    return result, order_id, reason


def check_and_move(
    conn: sqlite3.Connection,
    order_id: int,
    outcome: EventOutcome,
    source: str,
    stripe_event_id: str | None,
) -> tuple[EventResult, str | None, bool]:
    """Cross-check Stripe's word against the order, then move it or flag it.

    Returns the result, the flag's reason if one was raised, and whether the order moved.
    """
    row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    reason = evidence.refusal(row, outcome, source)
    if reason is not None:
        flag(conn, order_id, reason)
        return EventResult.FLAGGED, reason, False
    if outcome.status is OrderStatus.REFUNDED:
        # A cart order's charge includes shipping and tax: what Stripe took is the cap.
        charged = row["amount_paid"] if row["amount_paid"] is not None else row["amount_total"]
        refunded = outcome.amount_total_refunded(charged)
        if outcome.partial:
            return evidence.partial_result(note_refunded(conn, order_id, refunded, paid_only=True))
        note_refunded(conn, order_id, refunded, paid_only=False)
    move = transition(
        conn,
        order_id,
        outcome.status,
        source=source,
        stripe_event_id=stripe_event_id,
        payment_intent=outcome.payment_intent,
        customer_email=outcome.customer_email,
        session_id=outcome.session_id,
        paid=outcome,
    )
    return evidence.result_of(move)
