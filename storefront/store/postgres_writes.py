"""PostgreSQL's transaction functions: the steps of store.sqlite's writer-thread functions.

Each runs inside one ``PostgresStore._transaction`` (one pooled connection, one
transaction) and bears the name of its SQLite twin. SQLite serialises writers;
PostgreSQL does not, so a row a decision reads is locked (``SELECT … FOR
UPDATE``) and every update stays conditional on what was read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import asyncpg

from storefront import evidence
from storefront.carts import LineRequest
from storefront.catalog import NewProduct
from storefront.evidence import EventOutcome, EventResult
from storefront.orders import (
    Move,
    OrderStatus,
    can_transition,
    is_recovery,
    new_token,
    timestamp,
)
from storefront.store.postgres_cart import (
    Conn,
    count,
    empty_cart,
    insert_lines,
    order_number_for,
    record_line_amounts,
    settle_stock,
)

ORDER_SELECT = """
    SELECT o.*, p.name AS product_name, p.slug AS product_slug
    FROM orders o JOIN products p ON p.id = o.product_id
"""

# How an event finds its order, in this order of trust.
LOOKUPS = ("stripe_session_id", "token", "payment_intent")


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, …`` (SQL without ``?`` in literals)."""
    parts = sql.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


async def _upsert_products(conn: Conn, products: Sequence[NewProduct]) -> int:
    for p in products:
        await conn.execute(
            "INSERT INTO products (slug, name, description, unit_amount, currency, image,"
            " active, created_at, stock, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (slug) DO UPDATE SET name = excluded.name,"
            " description = excluded.description, unit_amount = excluded.unit_amount,"
            " currency = excluded.currency, image = excluded.image,"
            " active = excluded.active, stock = excluded.stock, kind = excluded.kind",
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
        )
    return len(products)


async def _open_order(
    conn: Conn,
    lines: Sequence[LineRequest] | None,
    product_id: int,
    unit_amount: int,
    currency: str,
    attempt: str | None,
    expires_at: int | None,
    cart_id: int | None,
) -> asyncpg.Record:
    # Twice at most: if another process inserts this attempt between our look and our
    # insert, the insert does nothing and the second look finds (and locks) its order.
    # (A clash on the random token or order number also inserts nothing: a fresh try.)
    for _ in range(3):
        existing = None
        if attempt:
            existing = await conn.fetchrow(
                "SELECT id, product_id, status FROM orders WHERE checkout_attempt = $1 FOR UPDATE",
                attempt,
            )
        if (
            existing
            and existing["product_id"] == product_id
            and existing["status"] == OrderStatus.PENDING
        ):
            order_id = int(existing["id"])
            # A checkout call starts again now: the reconciler counts its time in
            # flight from updated_at, so it must not abort the order meanwhile.
            await conn.execute(
                "UPDATE orders SET updated_at = $1 WHERE id = $2", timestamp(), order_id
            )
            break
        # A form whose attempt already led somewhere else starts afresh.
        if lines is None:
            name = await conn.fetchval("SELECT name FROM products WHERE id = $1", product_id)
            lines = [LineRequest(product_id, name, 1, unit_amount)]
        subtotal = sum(line.unit_amount * line.quantity for line in lines)
        now = timestamp()
        inserted = await conn.fetchval(
            "INSERT INTO orders (token, product_id, quantity, amount_total, currency,"
            " checkout_attempt, expires_at, created_at, updated_at, order_number,"
            " amount_subtotal, cart_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $4, $10)"
            " ON CONFLICT DO NOTHING RETURNING id",
            new_token(),
            product_id,
            sum(line.quantity for line in lines),
            subtotal,
            currency,
            None if existing else attempt,
            expires_at,
            now,
            order_number_for(),
            cart_id,
        )
        if inserted is not None:
            order_id = int(inserted)
            # Reserves the stock, or raises OutOfStock and the whole order rolls back.
            await insert_lines(conn, order_id, lines)
            await _record(conn, order_id, OrderStatus.PENDING, "checkout", None)
            break
    else:
        raise RuntimeError(f"checkout attempt {attempt!r} found no order and could not insert")
    # Read back in the same transaction: the checkout needs the whole order at once.
    row: asyncpg.Record = await conn.fetchrow(ORDER_SELECT + " WHERE o.id = $1", order_id)
    return row


async def _attach_session(conn: Conn, order_id: int, session_id: str) -> bool:
    status = await conn.execute(
        "UPDATE orders SET stripe_session_id = $1, updated_at = $2"
        " WHERE id = $3 AND status = $4"
        " AND (stripe_session_id IS NULL OR stripe_session_id = $1)",
        session_id,
        timestamp(),
        order_id,
        OrderStatus.PENDING.value,
    )
    return count(status) == 1


async def abort_without_session(
    conn: Conn, order_id: int, *, untouched_for: float, source: str
) -> bool:
    """Abort a pending order that has no session and no checkout call in flight."""
    now = time.time()
    status = await conn.execute(
        "UPDATE orders SET status = $1, updated_at = $2"
        " WHERE id = $3 AND status = $4 AND stripe_session_id IS NULL AND updated_at <= $5",
        OrderStatus.ABORTED.value,
        timestamp(now),
        order_id,
        OrderStatus.PENDING.value,
        timestamp(now - max(untouched_for, 0.0)),
    )
    if count(status) != 1:
        return False
    await settle_stock(conn, order_id, OrderStatus.ABORTED)
    await _record(conn, order_id, OrderStatus.ABORTED, source, None)
    return True


async def flag(conn: Conn, order_id: int, reason: str) -> None:
    """Flag the order for the shopkeeper; the first reason stays on the order."""
    await conn.execute(
        "UPDATE orders SET flag_reason = coalesce(flag_reason, $1),"
        " flagged_at = coalesce(flagged_at, $2),"
        # Newly flagged is a change the receipt shows: its poll version must move.
        " updated_at = CASE WHEN flagged_at IS NULL THEN $2 ELSE updated_at END WHERE id = $3",
        reason[:500],
        timestamp(),
        order_id,
    )


async def transition(
    conn: Conn,
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

    The row is locked while the rule decides, and the update is still conditional
    on the status read, so of several callers in any process exactly one wins.
    """
    row = await conn.fetchrow("SELECT status FROM orders WHERE id = $1 FOR UPDATE", order_id)
    if row is None:
        return None
    before = OrderStatus(row["status"])
    if not can_transition(before, new):
        return None
    reason = None
    if is_recovery(before, new):
        reason = f"Stripe reports {new.value} for an order that was {before.value}"
    status = await conn.execute(
        "UPDATE orders SET status = $1,"
        " payment_intent = coalesce($2, payment_intent),"
        " customer_email = coalesce($3, customer_email),"
        " stripe_session_id = coalesce(stripe_session_id, $4),"
        " updated_at = $5"
        " WHERE id = $6 AND status = $7",
        new.value,
        payment_intent,
        customer_email,
        session_id,
        timestamp(),
        order_id,
        before.value,
    )
    if count(status) != 1:
        return None
    lines_reason = None
    if paid is not None and new in (OrderStatus.PAID, OrderStatus.PROCESSING):
        await _record_totals(conn, order_id, paid)
        lines_reason = await record_line_amounts(conn, order_id, paid)
    stock_reason = await settle_stock(conn, order_id, new)
    if new is OrderStatus.PAID:
        cart_id = await conn.fetchval("SELECT cart_id FROM orders WHERE id = $1", order_id)
        if cart_id is not None:
            await empty_cart(conn, cart_id)
    # Both reasons, when a late payment also finds its units sold to someone else.
    reason = "; ".join(r for r in (reason, stock_reason, lines_reason) if r) or None
    if reason is not None:
        await flag(conn, order_id, reason)
    await _record(conn, order_id, new, source, stripe_event_id, note or reason)
    if new is OrderStatus.PAID:
        # The emails commit with the payment, or not at all (the outbox drains them).
        await enqueue_email(conn, order_id, "confirmation")
        await enqueue_email(conn, order_id, "paid_notice")
    return Move(before, new, reason)


async def _record_totals(conn: Conn, order_id: int, paid: EventOutcome) -> None:
    # What Stripe says the shopper paid; evidence.mismatch has checked its arithmetic.
    if paid.amount is None:
        return
    address = json.dumps(dict(paid.shipping_address)) if paid.shipping_address else None
    await conn.execute(
        "UPDATE orders SET amount_paid = $1, amount_discount = coalesce($2, amount_discount),"
        " amount_shipping = coalesce($3, amount_shipping), amount_tax = coalesce($4, amount_tax),"
        " shipping_name = coalesce($5, shipping_name),"
        " shipping_address = coalesce($6, shipping_address) WHERE id = $7",
        paid.amount,
        paid.discount,
        paid.shipping,
        paid.tax,
        paid.shipping_name,
        address,
        order_id,
    )


async def _record(
    conn: Conn,
    order_id: int,
    status: OrderStatus,
    source: str,
    stripe_event_id: str | None,
    note: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO order_events (order_id, status, source, stripe_event_id, note, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        order_id,
        status.value,
        source,
        stripe_event_id,
        note,
        timestamp(),
    )


async def find_order_id(
    conn: Conn,
    *,
    session_id: str | None = None,
    order_token: str | None = None,
    payment_intent: str | None = None,
) -> int | None:
    """Find the order an event is about, by session id, token or payment intent."""
    for column, value in zip(LOOKUPS, (session_id, order_token, payment_intent), strict=True):
        if value:
            found = await conn.fetchval(f"SELECT id FROM orders WHERE {column} = $1", value)
            if found is not None:
                return int(found)
    return None


async def record_webhook_event(conn: Conn, event_id: str, event_type: str) -> bool:
    """Remember an event id; False if it was seen before (a duplicate delivery).

    A concurrent insert of the same id waits for the first transaction, then
    inserts nothing: the id counts once across every instance.
    """
    status = await conn.execute(
        "INSERT INTO webhook_events (id, type, received_at) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        event_id,
        event_type,
        timestamp(),
    )
    return count(status) == 1


async def record_and_apply(
    conn: Conn, event_id: str, event_type: str, outcome: EventOutcome | None
) -> tuple[EventResult, int | None, str | None]:
    """Record the event id and apply its outcome: the id is recorded only with its effect."""
    if not await record_webhook_event(conn, event_id, event_type):
        return EventResult.DUPLICATE, None, None
    order_id = None
    if outcome is not None:
        order_id = await find_order_id(
            conn,
            session_id=outcome.session_id,
            order_token=outcome.order_token,
            payment_intent=outcome.payment_intent,
        )
    result, reason = EventResult.IGNORED, None
    if outcome is not None and order_id is not None:
        result, reason, _ = await check_and_move(conn, order_id, outcome, "webhook", event_id)
    await note_webhook_result(conn, event_id, order_id, result)
    return result, order_id, reason


async def check_and_move(
    conn: Conn,
    order_id: int,
    outcome: EventOutcome,
    source: str,
    stripe_event_id: str | None,
) -> tuple[EventResult, str | None, bool]:
    """Cross-check Stripe's word against the (locked) order, then move it or flag it."""
    row = await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
    reason = evidence.refusal(dict(row) if row else {}, outcome, source)
    if reason is not None:
        await flag(conn, order_id, reason)
        return EventResult.FLAGGED, reason, False
    if row is not None and outcome.status is OrderStatus.REFUNDED:
        # A cart order's charge includes shipping and tax: what Stripe took is the cap.
        charged = row["amount_paid"] if row["amount_paid"] is not None else row["amount_total"]
        refunded = outcome.amount_total_refunded(charged)
        if outcome.partial:
            grew = await note_refunded(conn, order_id, refunded, paid_only=True)
            return evidence.partial_result(grew)
        await note_refunded(conn, order_id, refunded, paid_only=False)
    move = await transition(
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


# What the shop's own writes queue or note for the back office: store.backoffice's twins.


async def enqueue_email(
    conn: Conn,
    order_id: int | None,
    kind: str,
    detail: str | None = None,
    key: str | None = None,
) -> None:
    """Queue one email inside the caller's transaction; one per cause (``key``)."""
    await conn.execute(
        "INSERT INTO outbox (order_id, kind, detail, dedupe_key, created_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        order_id,
        kind,
        detail,
        key or f"{kind}:{order_id}",
        timestamp(),
    )


async def note_refunded(conn: Conn, order_id: int, amount: int, *, paid_only: bool) -> bool:
    """Raise the order's refunded total to ``amount`` (never lower it); True if it grew."""
    sql = (
        "UPDATE orders SET amount_refunded = $1, updated_at = $2"
        " WHERE id = $3 AND amount_refunded < $1"
    )
    params: list[object] = [amount, timestamp(), order_id]
    if paid_only:
        sql += " AND status = $4"
        params.append(OrderStatus.PAID.value)
    return count(await conn.execute(sql, *params)) == 1


async def note_webhook_result(
    conn: Conn, event_id: str, order_id: int | None, result: EventResult
) -> None:
    """Remember which order an event touched and what it did (the webhook log)."""
    await conn.execute(
        "UPDATE webhook_events SET order_id = $1, result = $2 WHERE id = $3",
        order_id,
        result.value,
        event_id,
    )
