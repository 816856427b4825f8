"""The back office's queries on PostgreSQL: store.backoffice's ``BackOfficeQueries``, ported.

``PostgresStore`` mixes these in. Reads run on the pool; each write is one
transaction running a function below named as its SQLite twin in store.backoffice
(the emails and refunds that the shop's own writes queue are in ``postgres_writes``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from storefront.catalog import Product
from storefront.evidence import DisputeReport, EventResult
from storefront.orders import Fulfilment, Order, OrderStatus, TimelineEntry, timestamp
from storefront.store.backoffice import (
    Dispute,
    OrderQuery,
    OutboxEmail,
    StaffSession,
    WebhookLogEntry,
)
from storefront.store.postgres_writes import (
    ORDER_SELECT,
    Conn,
    count,
    enqueue_email,
    find_order_id,
    flag,
    note_webhook_result,
    numbered,
    record_webhook_event,
)


class PostgresBackOffice:
    """The back office's half of ``PostgresStore`` (mixed into it; needs its pool)."""

    pool: asyncpg.Pool
    _transaction: Any

    async def all_products(self) -> list[Product]:
        """Every product, on sale or not, in the order they were added."""
        rows = await self.pool.fetch("SELECT * FROM products ORDER BY id")
        return [Product.from_row(r) for r in rows]

    async def list_orders(self, query: OrderQuery) -> tuple[list[Order], int]:
        """One page of orders, newest first, and how many match in all."""
        if "\x00" in query.search or "\x00" in query.status:
            return [], 0
        where, params = query.where()
        # SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE is the same search.
        where = numbered(where.replace(" LIKE ", " ILIKE "))
        n = len(params)
        total = await self.pool.fetchval("SELECT count(*) FROM orders o" + where, *params)
        rows = await self.pool.fetch(
            ORDER_SELECT + where + f" ORDER BY o.id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
            *params,
            query.per_page,
            (max(query.page, 1) - 1) * query.per_page,
        )
        return [Order.from_row(r) for r in rows], int(total or 0)

    async def order_history(
        self, order_id: int
    ) -> tuple[list[TimelineEntry], list[WebhookLogEntry], list[Dispute]]:
        """The order's timeline, the webhook events that touched it and its disputes."""
        timeline = await self.pool.fetch(
            "SELECT status, source, created_at, note FROM order_events"
            " WHERE order_id = $1 ORDER BY id",
            order_id,
        )
        events = await self.pool.fetch(
            "SELECT id, type, received_at, order_id, result FROM webhook_events"
            " WHERE order_id = $1 ORDER BY received_at",
            order_id,
        )
        disputes = await self.pool.fetch(
            "SELECT id, order_id, amount, currency, reason, status, updated_at FROM disputes"
            " WHERE order_id = $1 ORDER BY created_at",
            order_id,
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
        if before is not None and "\x00" in before:
            return []
        rows = await self.pool.fetch(
            "SELECT id, type, received_at, order_id, result FROM webhook_events"
            " WHERE received_at < $1 ORDER BY received_at DESC LIMIT $2",
            before or "9999",
            limit,
        )
        return [WebhookLogEntry(**dict(r)) for r in rows]

    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these event ids were received already."""
        ids = [i for i in event_ids if "\x00" not in i]
        if not ids:
            return set()
        rows = await self.pool.fetch("SELECT id FROM webhook_events WHERE id = ANY($1)", ids)
        return {r["id"] for r in rows}

    async def set_fulfilment(
        self, order_id: int, fulfilment: Fulfilment, note: str | None
    ) -> bool:
        """Mark a paid, unfulfilled order shipped or delivered; True if it changed."""
        async with self._transaction() as conn:
            return await _set_fulfilment(conn, order_id, fulfilment, note)

    async def record_dispute(
        self, event_id: str, event_type: str, dispute: DisputeReport
    ) -> tuple[EventResult, int | None]:
        """Record a dispute event: store the dispute, flag its order, queue the notice."""
        async with self._transaction() as conn:
            return await _record_dispute(conn, event_id, event_type, dispute)

    # Staff and their sessions.
    async def add_staff(self, email: str, password_hash: str) -> None:
        """Create a staff account, or set a new password for an existing one."""
        async with self._transaction() as conn:
            await _add_staff(conn, email, password_hash)

    async def staff_by_email(self, email: str) -> tuple[int, str] | None:
        """The account's id and password hash."""
        if "\x00" in email:
            return None
        row = await self.pool.fetchrow(
            "SELECT id, password_hash FROM staff_users WHERE email = $1", email.lower()
        )
        return (int(row["id"]), row["password_hash"]) if row else None

    async def open_staff_session(
        self, key: str, user_id: int, csrf_token: str, lifetime: int
    ) -> None:
        """Store a new session under ``key`` (the hash of the cookie's id)."""
        async with self._transaction() as conn:
            await _open_session(conn, key, user_id, csrf_token, int(time.time()) + lifetime)

    async def staff_session(self, key: str) -> StaffSession | None:
        """The live session stored under ``key``, if any."""
        if "\x00" in key:
            return None
        row = await self.pool.fetchrow(
            "SELECT s.user_id, u.email, s.csrf_token FROM staff_sessions s"
            " JOIN staff_users u ON u.id = s.user_id WHERE s.id = $1 AND s.expires_at > $2",
            key,
            int(time.time()),
        )
        return StaffSession(int(row["user_id"]), row["email"], row["csrf_token"]) if row else None

    async def close_staff_session(self, key: str) -> None:
        """End the session stored under ``key``."""
        if "\x00" in key:
            return
        async with self._transaction() as conn:
            await _close_session(conn, key)

    # The outbox.
    async def due_emails(self, limit: int = 20) -> list[OutboxEmail]:
        """Unsent emails whose next attempt is due, oldest first."""
        rows = await self.pool.fetch(
            "SELECT id, order_id, kind, detail, attempts FROM outbox"
            " WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
            int(time.time()),
            limit,
        )
        return [OutboxEmail(**dict(r)) for r in rows]

    async def email_sent(self, email_id: int, note: str | None = None) -> None:
        """Mark an outbox email sent (``note``: why it was dropped instead)."""
        async with self._transaction() as conn:
            await _email_sent(conn, email_id, note)

    async def email_failed(self, email_id: int, error: str, retry_in: float) -> None:
        """Count a failed attempt and schedule the next one."""
        async with self._transaction() as conn:
            await _email_failed(conn, email_id, error, int(time.time() + retry_in))


# The back office's transaction functions, named as their twins in store.backoffice.


async def _set_fulfilment(
    conn: Conn, order_id: int, fulfilment: Fulfilment, note: str | None
) -> bool:
    now = timestamp()
    status = await conn.execute(
        "UPDATE orders SET fulfilment = $1, tracking_note = $2, fulfilled_at = $3,"
        " updated_at = $3 WHERE id = $4 AND status = $5 AND fulfilment = $6",
        fulfilment.value,
        note,
        now,
        order_id,
        OrderStatus.PAID.value,
        Fulfilment.UNFULFILLED.value,
    )
    if count(status) != 1:
        return False
    if fulfilment is Fulfilment.SHIPPED:
        await enqueue_email(conn, order_id, "shipped", note)
    return True


async def _record_dispute(
    conn: Conn, event_id: str, event_type: str, dispute: DisputeReport
) -> tuple[EventResult, int | None]:
    if not await record_webhook_event(conn, event_id, event_type):
        return EventResult.DUPLICATE, None
    order_id = await find_order_id(conn, payment_intent=dispute.payment_intent)
    if order_id is None:
        await note_webhook_result(conn, event_id, None, EventResult.IGNORED)
        return EventResult.IGNORED, None
    now = timestamp()
    await conn.execute(
        "INSERT INTO disputes (id, order_id, charge, payment_intent, amount, currency, reason,"
        " status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
        " amount = excluded.amount, reason = excluded.reason, updated_at = excluded.updated_at",
        dispute.id,
        order_id,
        dispute.charge,
        dispute.payment_intent,
        dispute.amount,
        dispute.currency,
        dispute.reason,
        dispute.status,
        now,
    )
    await flag(
        conn, order_id, f"dispute {dispute.id}: {dispute.reason or 'no reason'} ({dispute.status})"
    )
    if event_type in ("charge.dispute.created", "charge.dispute.closed"):
        await enqueue_email(
            conn,
            order_id,
            "dispute_notice",
            f"{dispute.id} {dispute.status}",
            key=f"dispute:{dispute.id}:{dispute.status}",
        )
    await note_webhook_result(conn, event_id, order_id, EventResult.FLAGGED)
    return EventResult.FLAGGED, order_id


async def _add_staff(conn: Conn, email: str, password_hash: str) -> None:
    await conn.execute(
        "INSERT INTO staff_users (email, password_hash, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
        email.lower(),
        password_hash,
        timestamp(),
    )
    # A new password ends every session signed in with the old one.
    await conn.execute(
        "DELETE FROM staff_sessions WHERE user_id = (SELECT id FROM staff_users WHERE email = $1)",
        email.lower(),
    )


async def _open_session(
    conn: Conn, key: str, user_id: int, csrf_token: str, expires_at: int
) -> None:
    await conn.execute("DELETE FROM staff_sessions WHERE expires_at <= $1", int(time.time()))
    await conn.execute(
        "INSERT INTO staff_sessions (id, user_id, csrf_token, expires_at, created_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        key,
        user_id,
        csrf_token,
        expires_at,
        timestamp(),
    )


async def _close_session(conn: Conn, key: str) -> None:
    await conn.execute("DELETE FROM staff_sessions WHERE id = $1", key)


async def _email_sent(conn: Conn, email_id: int, note: str | None) -> None:
    await conn.execute(
        "UPDATE outbox SET sent_at = $1, last_error = $2, attempts = attempts + 1 WHERE id = $3",
        timestamp(),
        note,
        email_id,
    )


async def _email_failed(conn: Conn, email_id: int, error: str, next_at: int) -> None:
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2"
        " WHERE id = $3",
        error[:500].replace("\x00", ""),
        next_at,
        email_id,
    )
