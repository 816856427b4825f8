"""The PostgreSQL store's carts, order lines and stock reservations: store.sqlite_cart, ported.

``PostgresStore`` mixes ``PostgresCart`` in; the transaction functions bear the
names of their SQLite twins. A reservation is one conditional update of
``products.reserved`` (``stock - reserved >= quantity``): PostgreSQL re-checks
the condition on the row it waited for, so of many checkouts racing for the last
units only as many win as there are units. Products are touched in id order, so
two multi-line checkouts never wait on each other in a circle.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from storefront.carts import (
    MAX_LINES,
    MAX_QUANTITY,
    Cart,
    CartLine,
    LineRequest,
    OutOfStock,
    QuantityError,
    available,
    new_cart_token,
    new_order_number,
    shipping_offer,
)
from storefront.orders import OrderStatus, timestamp
from storefront.paid_lines import lines_mismatch
from storefront.store import LINES_DUE_STATUSES

if TYPE_CHECKING:
    from storefront.evidence import EventOutcome

Conn = asyncpg.Connection


def count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 1`` or ``INSERT 0 1`` (DDL: 0)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


# The cart and its lines in one read (one snapshot): a cart with no items is one
# row whose item columns are NULL; no row at all, no such cart.
_CART_SELECT = (
    "SELECT c.id AS cart_id, i.product_id, i.quantity, p.slug, p.name, p.description,"
    " p.unit_amount, p.currency, p.kind, p.image, p.stock, p.reserved, p.active"
    " FROM carts c LEFT JOIN cart_items i ON i.cart_id = c.id"
    " LEFT JOIN products p ON p.id = i.product_id WHERE c.token = $1"
    " ORDER BY i.added_at, i.product_id"
)


class PostgresCart:
    """Carts, order lines and stock on the PostgreSQL store (mixed into ``PostgresStore``)."""

    pool: asyncpg.Pool
    _transaction: Any

    async def cart(self, token: str) -> tuple[int, Cart] | None:
        """The cart with this cookie token and its id; products no longer sold are dropped."""
        if "\x00" in token:
            return None
        found = await self.pool.fetch(_CART_SELECT, token)
        if not found:
            return None
        cart_id = int(found[0]["cart_id"])
        rows = [r for r in found if r["product_id"] is not None]
        gone = [r for r in rows if not r["active"]]
        if gone:
            async with self._transaction() as conn:
                await _drop_items(conn, int(cart_id), [r["product_id"] for r in gone])
        lines = tuple(CartLine.from_row(r) for r in rows if r["active"])
        return int(cart_id), Cart(lines, tuple(r["name"] for r in gone))

    async def add_to_cart(self, token: str | None, product_id: int, quantity: int) -> str:
        """Add units to the cart (made if ``token`` names none); return the cart's token."""
        async with self._transaction() as conn:
            return await _add_to_cart(conn, token, product_id, quantity)

    async def set_cart_quantity(self, token: str, product_id: int, quantity: int) -> bool:
        """Set a line's quantity; False if the cart has no such line."""
        async with self._transaction() as conn:
            return await _set_quantity(conn, token, product_id, quantity)

    async def remove_from_cart(self, token: str, product_id: int) -> bool:
        """Take a product out of the cart; False if it was not there."""
        async with self._transaction() as conn:
            return await _remove(conn, token, product_id)

    async def delete_stale_carts(self, older_than_seconds: float) -> int:
        """Delete carts untouched for longer than that, with their items; how many."""
        async with self._transaction() as conn:
            return await _delete_stale_carts(conn, time.time() - older_than_seconds)

    async def order_lines(self, order_id: int) -> list[dict[str, Any]]:
        """The order's lines: name, quantity, unit amount, reservation state."""
        rows = await self.pool.fetch(
            "SELECT l.product_id, l.name, l.quantity, l.unit_amount, l.reservation, p.slug,"
            " l.amount_discount, l.amount_tax, l.amount_total"
            " FROM order_lines l JOIN products p ON p.id = l.product_id"
            " WHERE l.order_id = $1 ORDER BY l.id",
            order_id,
        )
        return [dict(r) for r in rows]

    async def stock_levels(self, product_ids: Sequence[int]) -> dict[int, int | None]:
        """Units left of each product (None: unlimited; 0: not on sale), in one small read."""
        if not product_ids:
            return {}
        rows = await self.pool.fetch(
            "SELECT id, stock, reserved, active FROM products WHERE id = ANY($1::bigint[])",
            list(product_ids),
        )
        return {r["id"]: available(r["stock"], r["reserved"], r["active"]) for r in rows}

    async def offer_shipping(self, order_id: int, amounts: Sequence[int]) -> None:
        """Record the shipping amounts the order's session offers (checked when it is paid)."""
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE orders SET shipping_offered = $1 WHERE id = $2 AND status = $3",
                shipping_offer(amounts),
                order_id,
                OrderStatus.PENDING.value,
            )

    async def record_lines(self, order_id: int, paid: EventOutcome) -> str | None:
        """Store a paid order's line amounts learnt after its move; the flag reason or None.

        Only on a paid, processing or refunded order; the order's row lock makes
        two instances storing the same lines take turns, and the second stores
        the same amounts again.
        """
        from storefront.store.postgres_writes import flag  # it imports this module

        async with self._transaction() as conn:
            status = await conn.fetchval(
                "SELECT status FROM orders WHERE id = $1 FOR UPDATE", order_id
            )
            if status not in LINES_DUE_STATUSES:
                return None
            reason = await record_line_amounts(conn, order_id, paid)
            if reason is not None:
                await flag(conn, order_id, reason)
            return reason

    async def stock_report(self) -> dict[str, tuple[int | None, int, int]]:
        """Per product slug: stock, reserved, and the units active reservations hold."""
        rows = await self.pool.fetch(
            "SELECT p.slug, p.stock, p.reserved, coalesce(sum(l.quantity), 0) AS held"
            " FROM products p LEFT JOIN order_lines l"
            " ON l.product_id = p.id AND l.reservation = 'active'"
            " GROUP BY p.id, p.slug, p.stock, p.reserved"
        )
        return {r["slug"]: (r["stock"], r["reserved"], int(r["held"])) for r in rows}


async def _cart_id(conn: Conn, token: str | None) -> int | None:
    # Locked: two tabs changing one cart take turns, so its limits hold.
    if not token or "\x00" in token:
        return None
    found = await conn.fetchval("SELECT id FROM carts WHERE token = $1 FOR UPDATE", token)
    return int(found) if found is not None else None


async def _touch(conn: Conn, cart_id: int) -> None:
    await conn.execute("UPDATE carts SET updated_at = $1 WHERE id = $2", timestamp(), cart_id)


async def _add_to_cart(conn: Conn, token: str | None, product_id: int, quantity: int) -> str:
    cart_id = await _cart_id(conn, token)
    if cart_id is None or token is None:
        token, now = new_cart_token(), timestamp()
        cart_id = int(
            await conn.fetchval(
                "INSERT INTO carts (token, created_at, updated_at) VALUES ($1, $2, $2)"
                " RETURNING id",
                token,
                now,
            )
        )
    held = await conn.fetchval(
        "SELECT quantity FROM cart_items WHERE cart_id = $1 AND product_id = $2",
        cart_id,
        product_id,
    )
    if held is None:
        lines = await conn.fetchval("SELECT count(*) FROM cart_items WHERE cart_id = $1", cart_id)
        if lines >= MAX_LINES:
            raise QuantityError(f"A cart holds at most {MAX_LINES} different products.")
        await conn.execute(
            "INSERT INTO cart_items (cart_id, product_id, quantity, added_at)"
            " VALUES ($1, $2, $3, $4)",
            cart_id,
            product_id,
            quantity,
            timestamp(),
        )
    else:
        if held + quantity > MAX_QUANTITY:
            raise QuantityError(
                f"You can order at most {MAX_QUANTITY} of one product;"
                f" your cart already holds {held}."
            )
        await conn.execute(
            "UPDATE cart_items SET quantity = quantity + $1"
            " WHERE cart_id = $2 AND product_id = $3",
            quantity,
            cart_id,
            product_id,
        )
    await _touch(conn, cart_id)
    return token


async def _set_quantity(conn: Conn, token: str, product_id: int, quantity: int) -> bool:
    cart_id = await _cart_id(conn, token)
    if cart_id is None:
        return False
    status = await conn.execute(
        "UPDATE cart_items SET quantity = $1 WHERE cart_id = $2 AND product_id = $3",
        quantity,
        cart_id,
        product_id,
    )
    await _touch(conn, cart_id)
    return count(status) == 1


async def _remove(conn: Conn, token: str, product_id: int) -> bool:
    cart_id = await _cart_id(conn, token)
    if cart_id is None:
        return False
    status = await conn.execute(
        "DELETE FROM cart_items WHERE cart_id = $1 AND product_id = $2", cart_id, product_id
    )
    await _touch(conn, cart_id)
    return count(status) == 1


async def _drop_items(conn: Conn, cart_id: int, product_ids: Sequence[int]) -> None:
    await conn.execute(
        "DELETE FROM cart_items WHERE cart_id = $1 AND product_id = ANY($2)",
        cart_id,
        list(product_ids),
    )


async def _delete_stale_carts(conn: Conn, before: float) -> int:
    cutoff = timestamp(before)
    await conn.execute(
        "DELETE FROM cart_items WHERE cart_id IN (SELECT id FROM carts WHERE updated_at < $1)",
        cutoff,
    )
    return count(await conn.execute("DELETE FROM carts WHERE updated_at < $1", cutoff))


async def empty_cart(conn: Conn, cart_id: int) -> None:
    """Empty the cart an order was paid from (it may be gone already)."""
    await conn.execute("DELETE FROM cart_items WHERE cart_id = $1", cart_id)


async def insert_lines(conn: Conn, order_id: int, lines: Sequence[LineRequest]) -> None:
    """Add the order's lines, reserving counted stock; OutOfStock (roll back) if short.

    Every line is tried first so the shopper hears about all short products at once.
    """
    short: list[tuple[str, int]] = []
    states: dict[int, str] = {}
    for line in sorted(lines, key=lambda line: line.product_id):
        status = await conn.execute(
            "UPDATE products SET reserved = reserved + $1"
            " WHERE id = $2 AND stock IS NOT NULL AND stock - reserved >= $1",
            line.quantity,
            line.product_id,
        )
        if count(status) == 1:
            states[line.product_id] = "active"
            continue
        row = await conn.fetchrow(
            "SELECT stock, reserved FROM products WHERE id = $1", line.product_id
        )
        if row is not None and row["stock"] is not None:
            short.append((line.name, max(row["stock"] - row["reserved"], 0)))
        states[line.product_id] = "none"
    if short:
        # In the order the shopper listed them, as on SQLite.
        order = {line.name: n for n, line in enumerate(lines)}
        raise OutOfStock(sorted(short, key=lambda s: order.get(s[0], 0)))
    for line in lines:
        await conn.execute(
            "INSERT INTO order_lines (order_id, product_id, name, quantity, unit_amount,"
            " reservation) VALUES ($1, $2, $3, $4, $5, $6)",
            order_id,
            line.product_id,
            line.name,
            line.quantity,
            line.unit_amount,
            states[line.product_id],
        )


def order_number_for() -> str:
    """A fresh order number; the insert's ON CONFLICT retries the rare one taken already."""
    return new_order_number()


async def settle_stock(conn: Conn, order_id: int, new: OrderStatus) -> str | None:
    """Release or convert the order's reservations for its new status; a flag reason or None.

    Expired, failed and aborted orders give their units back; a paid one turns
    them into a sale. A payment for an order whose units were already given
    back takes them again only if they are still there, else it says why.
    """
    if new in (OrderStatus.EXPIRED, OrderStatus.FAILED, OrderStatus.ABORTED):
        for line in await _lines(conn, order_id, "active"):
            await conn.execute(
                "UPDATE products SET reserved = reserved - $1 WHERE id = $2 AND reserved >= $1",
                line["quantity"],
                line["product_id"],
            )
            await _mark(conn, line["id"], "active", "released")
        return None
    if new not in (OrderStatus.PAID, OrderStatus.REFUNDED):
        return None
    for line in await _lines(conn, order_id, "active"):
        # A shopkeeper may have lowered the stock meanwhile: never below zero.
        await conn.execute(
            "UPDATE products SET reserved = reserved - $1,"
            " stock = CASE WHEN stock >= $1 THEN stock - $1 ELSE 0 END"
            " WHERE id = $2 AND reserved >= $1",
            line["quantity"],
            line["product_id"],
        )
        await _mark(conn, line["id"], "active", "converted")
    oversold = []
    for line in await _lines(conn, order_id, "released"):
        status = await conn.execute(
            "UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock - reserved >= $1",
            line["quantity"],
            line["product_id"],
        )
        if count(status) != 1:
            oversold.append(line["name"])
        await _mark(conn, line["id"], "released", "converted")
    if oversold:
        return "paid after its stock was released, and none is left of: " + ", ".join(oversold)
    return None


async def _lines(conn: Conn, order_id: int, state: str) -> list[asyncpg.Record]:
    # In product order: the product rows are then locked in one order by every caller.
    return list(
        await conn.fetch(
            "SELECT id, product_id, name, quantity FROM order_lines"
            " WHERE order_id = $1 AND reservation = $2 ORDER BY product_id",
            order_id,
            state,
        )
    )


async def _mark(conn: Conn, line_id: int, before: str, after: str) -> None:
    await conn.execute(
        "UPDATE order_lines SET reservation = $1 WHERE id = $2 AND reservation = $3",
        after,
        line_id,
        before,
    )


async def record_line_amounts(conn: Conn, order_id: int, paid: EventOutcome) -> str | None:
    """Store each line's discount, tax and total from Stripe's line items; a flag reason or None.

    Nothing is stored when the line items do not fit the order (the flag says why)
    or when Stripe's answer came without them.
    """
    if not paid.lines:
        if paid.discount == 0 and paid.tax == 0:
            # Nothing taken off or added: each line cost its price times its quantity.
            await conn.execute(
                "UPDATE order_lines SET amount_discount = 0, amount_tax = 0,"
                " amount_total = unit_amount * quantity WHERE order_id = $1",
                order_id,
            )
        return None
    ours = await conn.fetch(
        "SELECT id, name, quantity, unit_amount FROM order_lines WHERE order_id = $1 ORDER BY id",
        order_id,
    )
    if (reason := lines_mismatch(ours, paid)) is not None:
        return f"line items refused: {reason}"
    for row, line in zip(ours, paid.lines, strict=True):
        await conn.execute(
            "UPDATE order_lines SET amount_discount = $1, amount_tax = $2, amount_total = $3"
            " WHERE id = $4",
            line.discount,
            line.tax,
            line.total,
            row["id"],
        )
    return None
