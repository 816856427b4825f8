"""Orders: the state machine, and the queries that read and move orders.

Nothing here imports Quart or Stripe: Stripe's objects arrive as plain
mappings, and the rules are plain Python that unit tests run without I/O.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from storefront.db import Database


class OrderStatus(StrEnum):
    """Where an order stands."""

    PENDING = "pending"  # waiting for the shopper to pay
    PROCESSING = "processing"  # checkout completed, a delayed payment is settling
    PAID = "paid"
    FAILED = "failed"  # the delayed payment failed
    EXPIRED = "expired"  # the session expired or the shopper cancelled
    REFUNDED = "refunded"
    ABORTED = "aborted"  # checkout could not start (Stripe unreachable)

    @property
    def is_final(self) -> bool:
        """True when nothing more is expected without the shopkeeper acting."""
        return self not in (OrderStatus.PENDING, OrderStatus.PROCESSING)

    @property
    def is_settled(self) -> bool:
        """True when Stripe has confirmed the money: there is nothing left to ask it."""
        return self in (OrderStatus.PAID, OrderStatus.REFUNDED)


# Each status lists the statuses it may be reached from. Anything else is a
# late or duplicated event and changes nothing: orders only move forward.
_S = OrderStatus
PREDECESSORS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING: frozenset(),
    _S.PROCESSING: frozenset({_S.PENDING}),
    _S.PAID: frozenset({_S.PENDING, _S.PROCESSING}),
    _S.FAILED: frozenset({_S.PENDING, _S.PROCESSING}),
    _S.EXPIRED: frozenset({_S.PENDING}),
    _S.ABORTED: frozenset({_S.PENDING}),
    # A refund can only follow a payment; if its event overtakes the payment's,
    # it still wins, since Stripe's final truth is "refunded".
    _S.REFUNDED: frozenset({_S.PENDING, _S.PROCESSING, _S.PAID}),
}

# Stripe's evidence that money was taken wins over an order we had given up on
# (aborted while its checkout was in flight, expired while the shopper paid):
# such moves are allowed, but they flag the order for the shopkeeper.
RECOVERIES: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    _S.PAID: frozenset({_S.ABORTED, _S.EXPIRED, _S.FAILED}),
    _S.PROCESSING: frozenset({_S.ABORTED, _S.EXPIRED}),
    _S.REFUNDED: frozenset({_S.ABORTED, _S.EXPIRED, _S.FAILED}),
}


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    """Whether an order in ``current`` may move to ``new``."""
    return current in PREDECESSORS[new] or is_recovery(current, new)


def is_recovery(current: OrderStatus, new: OrderStatus) -> bool:
    """Whether moving ``current`` to ``new`` overrules us with Stripe's word (flags it)."""
    return current in RECOVERIES.get(new, frozenset())


def next_status(current: OrderStatus, new: OrderStatus | None) -> OrderStatus:
    """The status after applying ``new`` to an order in ``current``."""
    if new is not None and can_transition(current, new):
        return new
    return current


@dataclass(frozen=True)
class Order:
    """One purchase, as the receipt shows it."""

    id: int
    token: str
    product_id: int
    product_name: str
    product_slug: str
    quantity: int
    amount_total: int
    currency: str
    status: OrderStatus
    stripe_session_id: str | None
    customer_email: str | None
    created_at: str
    updated_at: str
    expires_at: int | None = None
    payment_intent: str | None = None
    flag_reason: str | None = None
    flagged_at: str | None = None

    @property
    def flagged(self) -> bool:
        """Whether the shopkeeper must look at this order."""
        return self.flagged_at is not None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Order:
        return cls(
            id=row["id"],
            token=row["token"],
            product_id=row["product_id"],
            product_name=row["product_name"],
            product_slug=row["product_slug"],
            quantity=row["quantity"],
            amount_total=row["amount_total"],
            currency=row["currency"],
            status=OrderStatus(row["status"]),
            stripe_session_id=row["stripe_session_id"],
            customer_email=row["customer_email"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            expires_at=row["expires_at"],
            payment_intent=row["payment_intent"],
            flag_reason=row["flag_reason"],
            flagged_at=row["flagged_at"],
        )


@dataclass(frozen=True)
class TimelineEntry:
    """One applied transition."""

    status: OrderStatus
    source: str
    created_at: str
    note: str | None = None


def new_token() -> str:
    """An unguessable public order token (192 bits)."""
    return secrets.token_urlsafe(24)


_ORDER_SELECT = """
    SELECT o.*, p.name AS product_name, p.slug AS product_slug
    FROM orders o JOIN products p ON p.id = o.product_id
"""


async def get_by_id(db: Database, order_id: int) -> Order | None:
    """The order with this row id, if any."""
    row = await db.fetch_one(_ORDER_SELECT + " WHERE o.id = ?", (order_id,))
    return Order.from_row(row) if row else None


async def get_with_timeline(db: Database, token: str) -> tuple[Order, list[TimelineEntry]] | None:
    """The order with this public token and its timeline, read in one query.

    The receipt's status poll runs this every 2 s per open page: one trip to
    the reader instead of two.
    """
    row = await db.fetch_one(
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


async def open_order(
    db: Database,
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
    row = await db.write(_open_order, product_id, unit_amount, currency, attempt, expires_at)
    return Order.from_row(row)


def _open_order(
    conn: sqlite3.Connection,
    product_id: int,
    unit_amount: int,
    currency: str,
    attempt: str | None,
    expires_at: int | None,
) -> sqlite3.Row:
    existing = None
    if attempt:
        existing = conn.execute(
            "SELECT id, product_id, status FROM orders WHERE checkout_attempt = ?", (attempt,)
        ).fetchone()
    if existing and existing["product_id"] == product_id and existing["status"] == "pending":
        order_id = int(existing["id"])
        # A checkout call starts again now: the reconciler counts its time in
        # flight from updated_at, so it must not abort the order meanwhile.
        conn.execute("UPDATE orders SET updated_at = ? WHERE id = ?", (timestamp(), order_id))
    else:
        # A form whose attempt already led somewhere else starts afresh.
        now = timestamp()
        cursor = conn.execute(
            "INSERT INTO orders (token, product_id, quantity, amount_total, currency,"
            " checkout_attempt, expires_at, created_at, updated_at)"
            " VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)",
            (
                new_token(),
                product_id,
                unit_amount,
                currency,
                None if existing else attempt,
                expires_at,
                now,
                now,
            ),
        )
        order_id = int(cursor.lastrowid or 0)
        _record(conn, order_id, OrderStatus.PENDING, "checkout", None)
    # Read back in the same trip: the checkout needs the whole order at once.
    row: sqlite3.Row = conn.execute(_ORDER_SELECT + " WHERE o.id = ?", (order_id,)).fetchone()
    return row


def timestamp(at: float | None = None) -> str:
    """UTC as the schema stores it (``2026-01-31T12:00:00.000Z``), now or at unix ``at``.

    Computed here rather than in SQL so every backend writes the same text,
    which sorts and compares in time order.
    """
    when = dt.datetime.fromtimestamp(time.time() if at is None else at, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


async def attach_session(db: Database, order_id: int, session_id: str) -> bool:
    """Remember which Checkout Session pays for the order; False if the order moved on.

    Only a pending order without another session takes it: an order aborted
    while its checkout was in flight must not send the shopper to pay.
    """
    return bool(await db.write(_attach_session, order_id, session_id))


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
    _record(conn, order_id, OrderStatus.ABORTED, source, None)
    return True


def flag(conn: sqlite3.Connection, order_id: int, reason: str) -> None:
    """Flag the order for the shopkeeper; the first reason stays on the order."""
    conn.execute(
        "UPDATE orders SET flag_reason = coalesce(flag_reason, ?),"
        " flagged_at = coalesce(flagged_at, ?) WHERE id = ?",
        (reason[:500], timestamp(), order_id),
    )


@dataclass(frozen=True)
class Move:
    """A transition that happened; ``flag`` says why it needs the shopkeeper, if it does."""

    before: OrderStatus
    after: OrderStatus
    flag: str | None = None


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
    if reason is not None:
        flag(conn, order_id, reason)
    _record(conn, order_id, new, source, stripe_event_id, note or reason)
    return Move(before, new, reason)


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
    lookups = (
        ("stripe_session_id", session_id),
        ("token", order_token),
        ("payment_intent", payment_intent),
    )
    for column, value in lookups:
        if value:
            row = conn.execute(f"SELECT id FROM orders WHERE {column} = ?", (value,)).fetchone()
            if row is not None:
                return int(row["id"])
    return None


async def find_order(
    db: Database,
    *,
    session_id: str | None = None,
    order_token: str | None = None,
    payment_intent: str | None = None,
) -> Order | None:
    """The committed order an event is about, looked up as ``find_order_id`` does."""
    lookups = (
        ("stripe_session_id", session_id),
        ("token", order_token),
        ("payment_intent", payment_intent),
    )
    for column, value in lookups:
        if value:
            row = await db.fetch_one(_ORDER_SELECT + f" WHERE o.{column} = ?", (value,))
            if row is not None:
                return Order.from_row(row)
    return None


async def is_known(
    db: Database, *, order_token: str | None = None, payment_intent: str | None = None
) -> bool:
    """Whether a committed order carries this token or payment intent."""
    for column, value in (("token", order_token), ("payment_intent", payment_intent)):
        if value and await db.fetch_one(f"SELECT 1 FROM orders WHERE {column} = ?", (value,)):
            return True
    return False


def record_webhook_event(conn: sqlite3.Connection, event_id: str, event_type: str) -> bool:
    """Remember an event id; False if it was seen before (a duplicate delivery)."""
    cursor = conn.execute(
        "INSERT INTO webhook_events (id, type, received_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (event_id, event_type, timestamp()),
    )
    return cursor.rowcount == 1


async def stale_open_orders(
    db: Database, older_than_seconds: float, limit: int = 100, after_id: int = 0
) -> list[Order]:
    """Pending or processing orders untouched for longer than the threshold, by id.

    Paged by ``after_id`` so a caller can walk them all: orders that stay
    processing for days must not hide the rest behind a fixed first page.
    """
    rows = await db.fetch_all(
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
