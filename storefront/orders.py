"""Orders: the state machine, and the queries that read and move orders.

Nothing here imports Quart or Stripe: Stripe's objects arrive as plain
mappings, and the rules are plain Python that unit tests run without I/O.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
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


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    """Whether an order in ``current`` may move to ``new``."""
    return current in PREDECESSORS[new]


def next_status(current: OrderStatus, new: OrderStatus | None) -> OrderStatus:
    """The status after applying ``new`` to an order in ``current``."""
    if new is not None and can_transition(current, new):
        return new
    return current


def status_from_session(session: Mapping[str, Any]) -> OrderStatus | None:
    """What a Checkout Session's state says about its order (None: still open)."""
    status = session.get("status")
    if status == "complete":
        if session.get("payment_status") in ("paid", "no_payment_required"):
            return OrderStatus.PAID
        return OrderStatus.PROCESSING
    if status == "expired":
        return OrderStatus.EXPIRED
    return None


@dataclass(frozen=True)
class EventOutcome:
    """What a webhook event means for an order, and how to find that order."""

    status: OrderStatus
    session_id: str | None = None
    order_token: str | None = None
    payment_intent: str | None = None
    customer_email: str | None = None


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    # A signed event is Stripe's, but a field of the wrong shape must not turn
    # into a 500 that Stripe retries for days: treat it as absent.
    value = obj.get(key)
    if isinstance(value, Mapping):  # an expanded object: its id
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def outcome_from_event(event_type: str, obj: Mapping[str, Any]) -> EventOutcome | None:
    """Map a Stripe event to the transition it asks for (None: not ours to act on)."""
    if event_type.startswith("checkout.session."):
        status = {
            "checkout.session.completed": status_from_session(obj),
            "checkout.session.async_payment_succeeded": OrderStatus.PAID,
            "checkout.session.async_payment_failed": OrderStatus.FAILED,
            "checkout.session.expired": OrderStatus.EXPIRED,
        }.get(event_type)
        if status is None:
            return None
        return EventOutcome(
            status=status,
            session_id=_text(obj, "id"),
            order_token=_text(obj, "client_reference_id"),
            payment_intent=_text(obj, "payment_intent"),
            customer_email=_text(_mapping(obj, "customer_details"), "email"),
        )
    if event_type == "charge.refunded":
        # Only a full refund refunds the order; a partial one leaves it paid.
        payment_intent = _text(obj, "payment_intent")
        if obj.get("refunded") is not True or payment_intent is None:
            return None
        return EventOutcome(
            status=OrderStatus.REFUNDED,
            payment_intent=payment_intent,
            order_token=_text(_mapping(obj, "metadata"), "order_token"),
        )
    return None


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
        )


@dataclass(frozen=True)
class TimelineEntry:
    """One applied transition."""

    status: OrderStatus
    source: str
    created_at: str


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
        " (SELECT json_group_array(json_array(e.id, e.status, e.source, e.created_at))"
        "  FROM order_events e WHERE e.order_id = o.id) AS timeline"
        " FROM orders o JOIN products p ON p.id = o.product_id WHERE o.token = ?",
        (token,),
    )
    if row is None:
        return None
    # json_group_array promises no order: sort by the entries' ids.
    entries = sorted(json.loads(row["timeline"]))
    return Order.from_row(row), [
        TimelineEntry(OrderStatus(status), source, created_at)
        for _, status, source, created_at in entries
    ]


async def open_order(
    db: Database, product_id: int, unit_amount: int, currency: str, attempt: str | None
) -> Order:
    """Insert a pending order, or return the pending one this attempt already made."""
    return Order.from_row(await db.write(_open_order, product_id, unit_amount, currency, attempt))


def _open_order(
    conn: sqlite3.Connection, product_id: int, unit_amount: int, currency: str, attempt: str | None
) -> sqlite3.Row:
    existing = None
    if attempt:
        existing = conn.execute(
            "SELECT id, product_id, status FROM orders WHERE checkout_attempt = ?", (attempt,)
        ).fetchone()
    if existing and existing["product_id"] == product_id and existing["status"] == "pending":
        order_id = int(existing["id"])
    else:
        # A form whose attempt already led somewhere else starts afresh.
        cursor = conn.execute(
            "INSERT INTO orders (token, product_id, quantity, amount_total, currency,"
            " checkout_attempt) VALUES (?, ?, 1, ?, ?, ?)",
            (new_token(), product_id, unit_amount, currency, None if existing else attempt),
        )
        order_id = int(cursor.lastrowid or 0)
        _record(conn, order_id, OrderStatus.PENDING, "checkout", None)
    # Read back in the same trip: the checkout needs the whole order at once.
    row: sqlite3.Row = conn.execute(_ORDER_SELECT + " WHERE o.id = ?", (order_id,)).fetchone()
    return row


async def attach_session(db: Database, order_id: int, session_id: str) -> None:
    """Remember which Checkout Session pays for the order."""
    await db.write(_attach_session, order_id, session_id)


def _attach_session(conn: sqlite3.Connection, order_id: int, session_id: str) -> None:
    conn.execute(
        "UPDATE orders SET stripe_session_id = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ',"
        " 'now') WHERE id = ? AND stripe_session_id IS NULL",
        (session_id, order_id),
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
) -> bool:
    """Move an order to ``new`` if the state machine allows; True if it moved.

    Runs inside ``Database.write``. The update is conditional on the current
    status, so of several callers exactly one wins.
    """
    allowed = sorted(PREDECESSORS[new])
    if not allowed:
        return False
    marks = ",".join("?" for _ in allowed)
    cursor = conn.execute(
        f"UPDATE orders SET status = ?,"
        f" payment_intent = coalesce(?, payment_intent),"
        f" customer_email = coalesce(?, customer_email),"
        f" updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        f" WHERE id = ? AND status IN ({marks})",
        (new.value, payment_intent, customer_email, order_id, *allowed),
    )
    if cursor.rowcount != 1:
        return False
    _record(conn, order_id, new, source, stripe_event_id)
    return True


def _record(
    conn: sqlite3.Connection,
    order_id: int,
    status: OrderStatus,
    source: str,
    stripe_event_id: str | None,
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO order_events (order_id, status, source, stripe_event_id)"
        " VALUES (?, ?, ?, ?)",
        (order_id, status.value, source, stripe_event_id),
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
        "INSERT OR IGNORE INTO webhook_events (id, type) VALUES (?, ?)", (event_id, event_type)
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
        _ORDER_SELECT + " WHERE o.status IN ('pending', 'processing')"
        " AND o.updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)"
        " AND o.id > ? ORDER BY o.id LIMIT ?",
        (f"-{older_than_seconds} seconds", after_id, limit),
    )
    return [Order.from_row(r) for r in rows]
