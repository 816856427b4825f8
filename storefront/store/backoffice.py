"""The back office's queries on SQLite: order lists, staff sessions, disputes, the outbox.

Kept apart from ``sqlite.py`` (the shop's own queries); ``SQLiteStore`` mixes
these in. Writer functions run inside one ``Database.write`` transaction, and
the SQL is portable (``ON CONFLICT``, timestamps from ``orders.timestamp``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storefront.catalog import Product
from storefront.evidence import DisputeReport, EventResult
from storefront.orders import Fulfilment, Order, OrderStatus, TimelineEntry, timestamp

_ORDER_SELECT = """
    SELECT o.*, p.name AS product_name, p.slug AS product_slug
    FROM orders o JOIN products p ON p.id = o.product_id
"""


@dataclass(frozen=True)
class OrderQuery:
    """The order list's filter: a status (or "flagged"), a search text, a page."""

    status: str = ""
    search: str = ""
    page: int = 1
    per_page: int = 25

    def where(self) -> tuple[str, list[Any]]:
        """The WHERE clause and its parameters."""
        clauses, params = [], []
        if self.status == "flagged":
            clauses.append("o.flagged_at IS NOT NULL")
        elif self.status == "partially_refunded":
            clauses.append("o.status = ? AND o.amount_refunded > 0")
            params.append(OrderStatus.PAID.value)
        elif self.status:
            clauses.append("o.status = ?")
            params.append(self.status)
        text = self.search.strip()
        if text:
            number = text.lstrip("#")
            # An order id fits 64 bits: a longer run of digits is searched as text.
            if number.isdigit() and len(number) <= 18:
                clauses.append("(o.id = ? OR o.customer_email LIKE ?)")
                params += [int(number), f"%{text}%"]
            else:
                clauses.append("(lower(o.customer_email) LIKE ? OR o.token = ?)")
                params += [f"%{text.lower()}%", text]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


@dataclass(frozen=True)
class WebhookLogEntry:
    """One received webhook event and what it did."""

    id: str
    type: str
    received_at: str
    order_id: int | None
    result: str | None


@dataclass(frozen=True)
class Dispute:
    """A dispute on an order's payment, as Stripe last reported it."""

    id: str
    order_id: int
    amount: int
    currency: str
    reason: str | None
    status: str
    updated_at: str


@dataclass(frozen=True)
class OutboxEmail:
    """An email waiting in the outbox."""

    id: int
    order_id: int | None
    kind: str
    detail: str | None
    attempts: int


@dataclass(frozen=True)
class StaffSession:
    """A signed-in staff member's session."""

    user_id: int
    email: str
    csrf_token: str


class BackOfficeQueries:
    """The back office's half of ``SQLiteStore`` (mixed into it; needs ``Database``)."""

    fetch_one: Any
    fetch_all: Any
    write: Any

    async def all_products(self) -> list[Product]:
        """Every product, on sale or not, in the order they were added."""
        rows = await self.fetch_all("SELECT * FROM products ORDER BY id")
        return [Product.from_row(r) for r in rows]

    async def list_orders(self, query: OrderQuery) -> tuple[list[Order], int]:
        """One page of orders, newest first, and how many match in all."""
        where, params = query.where()
        total = await self.fetch_one("SELECT count(*) AS n FROM orders o" + where, params)
        rows = await self.fetch_all(
            _ORDER_SELECT + where + " ORDER BY o.id DESC LIMIT ? OFFSET ?",
            [*params, query.per_page, (max(query.page, 1) - 1) * query.per_page],
        )
        return [Order.from_row(r) for r in rows], int(total["n"]) if total else 0

    async def order_history(
        self, order_id: int
    ) -> tuple[list[TimelineEntry], list[WebhookLogEntry], list[Dispute]]:
        """The order's timeline, the webhook events that touched it and its disputes."""
        timeline = await self.fetch_all(
            "SELECT status, source, created_at, note FROM order_events"
            " WHERE order_id = ? ORDER BY id",
            (order_id,),
        )
        events = await self.fetch_all(
            "SELECT id, type, received_at, order_id, result FROM webhook_events"
            " WHERE order_id = ? ORDER BY received_at",
            (order_id,),
        )
        disputes = await self.fetch_all(
            "SELECT id, order_id, amount, currency, reason, status, updated_at FROM disputes"
            " WHERE order_id = ? ORDER BY created_at",
            (order_id,),
        )
        return (
            [
                TimelineEntry(OrderStatus(r["status"]), r["source"], r["created_at"], r["note"])
                for r in timeline
            ],
            [WebhookLogEntry(**dict(r)) for r in events],
            [Dispute(**dict(r)) for r in disputes],
        )

    async def webhook_log(
        self, limit: int = 100, before: str | None = None
    ) -> list[WebhookLogEntry]:
        """The newest webhook events received (older than ``before``, for paging)."""
        rows = await self.fetch_all(
            "SELECT id, type, received_at, order_id, result FROM webhook_events"
            " WHERE received_at < ? ORDER BY received_at DESC LIMIT ?",
            (before or "9999", limit),
        )
        return [WebhookLogEntry(**dict(r)) for r in rows]

    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these event ids were received already."""
        if not event_ids:
            return set()
        marks = ", ".join("?" for _ in event_ids)
        rows = await self.fetch_all(
            f"SELECT id FROM webhook_events WHERE id IN ({marks})", tuple(event_ids)
        )
        return {r["id"] for r in rows}

    async def set_fulfilment(
        self, order_id: int, fulfilment: Fulfilment, note: str | None
    ) -> bool:
        """Mark a paid, unfulfilled order shipped or delivered; True if it changed."""
        return bool(await self.write(_set_fulfilment, order_id, fulfilment, note))

    async def record_dispute(
        self, event_id: str, event_type: str, dispute: DisputeReport
    ) -> tuple[EventResult, int | None]:
        """Record a dispute event: store the dispute, flag its order, queue the notice."""
        return await self.write(_record_dispute, event_id, event_type, dispute)

    # Staff and their sessions.
    async def add_staff(self, email: str, password_hash: str) -> None:
        """Create a staff account, or set a new password for an existing one."""
        await self.write(_add_staff, email, password_hash)

    async def staff_by_email(self, email: str) -> tuple[int, str] | None:
        """The account's id and password hash."""
        row = await self.fetch_one(
            "SELECT id, password_hash FROM staff_users WHERE email = ?", (email.lower(),)
        )
        return (int(row["id"]), row["password_hash"]) if row else None

    async def open_staff_session(
        self, key: str, user_id: int, csrf_token: str, lifetime: int
    ) -> None:
        """Store a new session under ``key`` (the hash of the cookie's id)."""
        await self.write(_open_session, key, user_id, csrf_token, int(time.time()) + lifetime)

    async def staff_session(self, key: str) -> StaffSession | None:
        """The live session stored under ``key``, if any."""
        row = await self.fetch_one(
            "SELECT s.user_id, u.email, s.csrf_token FROM staff_sessions s"
            " JOIN staff_users u ON u.id = s.user_id WHERE s.id = ? AND s.expires_at > ?",
            (key, int(time.time())),
        )
        return StaffSession(int(row["user_id"]), row["email"], row["csrf_token"]) if row else None

    async def close_staff_session(self, key: str) -> None:
        """End the session stored under ``key``."""
        await self.write(_close_session, key)

    # The outbox.
    async def due_emails(self, limit: int = 20) -> list[OutboxEmail]:
        """Unsent emails whose next attempt is due, oldest first."""
        rows = await self.fetch_all(
            "SELECT id, order_id, kind, detail, attempts FROM outbox"
            " WHERE sent_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (int(time.time()), limit),
        )
        return [OutboxEmail(**dict(r)) for r in rows]

    async def email_sent(self, email_id: int, note: str | None = None) -> None:
        """Mark an outbox email sent (``note``: why it was dropped instead)."""
        await self.write(_email_sent, email_id, note)

    async def email_failed(self, email_id: int, error: str, retry_in: float) -> None:
        """Count a failed attempt and schedule the next one."""
        await self.write(_email_failed, email_id, error, int(time.time() + retry_in))


# Writer-thread functions.


def enqueue_email(
    conn: sqlite3.Connection,
    order_id: int | None,
    kind: str,
    detail: str | None = None,
    key: str | None = None,
) -> None:
    """Queue one email inside the caller's transaction; one per cause (``key``)."""
    conn.execute(
        "INSERT INTO outbox (order_id, kind, detail, dedupe_key, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (order_id, kind, detail, key or f"{kind}:{order_id}", timestamp()),
    )


def note_refunded(
    conn: sqlite3.Connection, order_id: int, amount: int, *, paid_only: bool
) -> bool:
    """Raise the order's refunded total to ``amount`` (never lower it); True if it grew."""
    sql = (
        "UPDATE orders SET amount_refunded = ?, updated_at = ?"
        " WHERE id = ? AND amount_refunded < ?"
    )
    params: list[Any] = [amount, timestamp(), order_id, amount]
    if paid_only:
        sql += " AND status = ?"
        params.append(OrderStatus.PAID.value)
    return conn.execute(sql, params).rowcount == 1


def note_webhook_result(
    conn: sqlite3.Connection, event_id: str, order_id: int | None, result: EventResult
) -> None:
    """Remember which order an event touched and what it did (the webhook log)."""
    conn.execute(
        "UPDATE webhook_events SET order_id = ?, result = ? WHERE id = ?",
        (order_id, result.value, event_id),
    )


def _set_fulfilment(
    conn: sqlite3.Connection, order_id: int, fulfilment: Fulfilment, note: str | None
) -> bool:
    cursor = conn.execute(
        "UPDATE orders SET fulfilment = ?, tracking_note = ?, fulfilled_at = ?, updated_at = ?"
        " WHERE id = ? AND status = ? AND fulfilment = ?",
        (
            fulfilment.value,
            note,
            timestamp(),
            timestamp(),
            order_id,
            OrderStatus.PAID.value,
            Fulfilment.UNFULFILLED.value,
        ),
    )
    if cursor.rowcount != 1:
        return False
    if fulfilment is Fulfilment.SHIPPED:
        enqueue_email(conn, order_id, "shipped", note)
    return True


def _record_dispute(
    conn: sqlite3.Connection, event_id: str, event_type: str, dispute: DisputeReport
) -> tuple[EventResult, int | None]:
    from storefront.store.sqlite import find_order_id, flag, record_webhook_event

    if not record_webhook_event(conn, event_id, event_type):
        return EventResult.DUPLICATE, None
    order_id = find_order_id(conn, payment_intent=dispute.payment_intent)
    if order_id is None:
        note_webhook_result(conn, event_id, None, EventResult.IGNORED)
        return EventResult.IGNORED, None
    now = timestamp()
    conn.execute(
        "INSERT INTO disputes (id, order_id, charge, payment_intent, amount, currency, reason,"
        " status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
        " amount = excluded.amount, reason = excluded.reason, updated_at = excluded.updated_at",
        (
            dispute.id,
            order_id,
            dispute.charge,
            dispute.payment_intent,
            dispute.amount,
            dispute.currency,
            dispute.reason,
            dispute.status,
            now,
            now,
        ),
    )
    flag(
        conn, order_id, f"dispute {dispute.id}: {dispute.reason or 'no reason'} ({dispute.status})"
    )
    if event_type in ("charge.dispute.created", "charge.dispute.closed"):
        enqueue_email(
            conn,
            order_id,
            "dispute_notice",
            f"{dispute.id} {dispute.status}",
            key=f"dispute:{dispute.id}:{dispute.status}",
        )
    note_webhook_result(conn, event_id, order_id, EventResult.FLAGGED)
    return EventResult.FLAGGED, order_id


def _add_staff(conn: sqlite3.Connection, email: str, password_hash: str) -> None:
    conn.execute(
        "INSERT INTO staff_users (email, password_hash, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
        (email.lower(), password_hash, timestamp()),
    )
    # A new password ends every session signed in with the old one.
    conn.execute(
        "DELETE FROM staff_sessions WHERE user_id = (SELECT id FROM staff_users WHERE email = ?)",
        (email.lower(),),
    )


def _open_session(
    conn: sqlite3.Connection, key: str, user_id: int, csrf_token: str, expires_at: int
) -> None:
    conn.execute("DELETE FROM staff_sessions WHERE expires_at <= ?", (int(time.time()),))
    conn.execute(
        "INSERT INTO staff_sessions (id, user_id, csrf_token, expires_at, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (key, user_id, csrf_token, expires_at, timestamp()),
    )


def _close_session(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM staff_sessions WHERE id = ?", (key,))


def _email_sent(conn: sqlite3.Connection, email_id: int, note: str | None) -> None:
    conn.execute(
        "UPDATE outbox SET sent_at = ?, last_error = ?, attempts = attempts + 1 WHERE id = ?",
        (timestamp(), note, email_id),
    )


def _email_failed(conn: sqlite3.Connection, email_id: int, error: str, next_at: int) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
        " WHERE id = ?",
        (error[:500], next_at, email_id),
    )
