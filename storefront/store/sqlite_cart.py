"""The SQLite store's carts, order lines and stock reservations.

Stock is held by a conditional update of ``products.reserved`` (``stock -
reserved >= quantity``) together with the order line's ``reservation`` state,
in the same write transaction: all lines are reserved, or the transaction
rolls back and none is. Every query here is portable SQL.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    from storefront.db import Database
    from storefront.evidence import EventOutcome

    _Base = Database
else:
    _Base = object

# The cart and its lines in one read (one snapshot): a cart with no items is one
# row whose item columns are NULL; no row at all, no such cart.
_CART_SELECT = (
    "SELECT c.id AS cart_id, i.product_id, i.quantity, p.slug, p.name, p.description,"
    " p.unit_amount, p.currency, p.kind, p.image, p.stock, p.reserved, p.active"
    " FROM carts c LEFT JOIN cart_items i ON i.cart_id = c.id"
    " LEFT JOIN products p ON p.id = i.product_id WHERE c.token = ?"
    " ORDER BY i.added_at, i.product_id"
)


class CartQueries(_Base):
    """Carts, order lines and stock on the SQLite store (mixed into ``SQLiteStore``)."""

    async def cart(self, token: str) -> tuple[int, Cart] | None:
        """The cart with this cookie token and its id; products no longer sold are dropped."""
        found = await self.fetch_all(_CART_SELECT, (token,))
        if not found:
            return None
        cart_id = int(found[0]["cart_id"])
        rows = [r for r in found if r["product_id"] is not None]
        gone = [r for r in rows if not r["active"]]
        if gone:
            await self.write(_drop_items, cart_id, [r["product_id"] for r in gone])
        lines = tuple(CartLine.from_row(r) for r in rows if r["active"])
        return cart_id, Cart(lines, tuple(r["name"] for r in gone))

    async def add_to_cart(self, token: str | None, product_id: int, quantity: int) -> str:
        """Add units to the cart (made if ``token`` names none); return the cart's token."""
        return await self.write(_add_to_cart, token, product_id, quantity)

    async def set_cart_quantity(self, token: str, product_id: int, quantity: int) -> bool:
        """Set a line's quantity; False if the cart has no such line."""
        return bool(await self.write(_set_quantity, token, product_id, quantity))

    async def remove_from_cart(self, token: str, product_id: int) -> bool:
        """Take a product out of the cart; False if it was not there."""
        return bool(await self.write(_remove, token, product_id))

    async def delete_stale_carts(self, older_than_seconds: float) -> int:
        """Delete carts untouched for longer than that, with their items; how many."""
        return int(await self.write(_delete_stale_carts, time.time() - older_than_seconds))

    async def order_lines(self, order_id: int) -> list[dict[str, Any]]:
        """The order's lines: name, quantity, unit amount, reservation state."""
        rows = await self.fetch_all(
            "SELECT l.product_id, l.name, l.quantity, l.unit_amount, l.reservation, p.slug,"
            " l.amount_discount, l.amount_tax, l.amount_total"
            " FROM order_lines l JOIN products p ON p.id = l.product_id"
            " WHERE l.order_id = ? ORDER BY l.id",
            (order_id,),
        )
        return [dict(r) for r in rows]

    async def stock_levels(self, product_ids: Sequence[int]) -> dict[int, int | None]:
        """Units left of each product (None: unlimited; 0: not on sale), in one small read."""
        if not product_ids:
            return {}
        marks = ",".join("?" * len(product_ids))
        rows = await self.fetch_all(
            f"SELECT id, stock, reserved, active FROM products WHERE id IN ({marks})",
            tuple(product_ids),
        )
        return {r["id"]: available(r["stock"], r["reserved"], r["active"]) for r in rows}

    async def offer_shipping(self, order_id: int, amounts: Sequence[int]) -> None:
        """Record the shipping amounts the order's session offers (checked when it is paid)."""
        await self.write(_offer_shipping, order_id, shipping_offer(amounts))

    async def record_lines(self, order_id: int, paid: EventOutcome) -> str | None:
        """Store a paid order's line amounts learnt after its move; the flag reason or None.

        Only on a paid, processing or refunded order; the same lines again store
        the same amounts (two instances may fetch them at once).
        """
        return await self.write(_record_lines, order_id, paid)

    async def stock_report(self) -> dict[str, tuple[int | None, int, int]]:
        """Per product slug: stock, reserved, and the units active reservations hold."""
        rows = await self.fetch_all(
            "SELECT p.slug, p.stock, p.reserved, coalesce(sum(l.quantity), 0) AS held"
            " FROM products p LEFT JOIN order_lines l"
            " ON l.product_id = p.id AND l.reservation = 'active'"
            " GROUP BY p.id, p.slug, p.stock, p.reserved"
        )
        return {r["slug"]: (r["stock"], r["reserved"], r["held"]) for r in rows}


def _offer_shipping(conn: sqlite3.Connection, order_id: int, offer: str) -> None:
    conn.execute(
        "UPDATE orders SET shipping_offered = ? WHERE id = ? AND status = ?",
        (offer, order_id, OrderStatus.PENDING),
    )


def _cart_id(conn: sqlite3.Connection, token: str | None) -> int | None:
    if not token:
        return None
    row = conn.execute("SELECT id FROM carts WHERE token = ?", (token,)).fetchone()
    return int(row["id"]) if row else None


def _touch(conn: sqlite3.Connection, cart_id: int) -> None:
    conn.execute("UPDATE carts SET updated_at = ? WHERE id = ?", (timestamp(), cart_id))


def _add_to_cart(
    conn: sqlite3.Connection, token: str | None, product_id: int, quantity: int
) -> str:
    cart_id = _cart_id(conn, token)
    if cart_id is None or token is None:
        token, now = new_cart_token(), timestamp()
        # SQLite-specific: lastrowid (PostgreSQL: INSERT … RETURNING id).
        cursor = conn.execute(
            "INSERT INTO carts (token, created_at, updated_at) VALUES (?, ?, ?)",
            (token, now, now),
        )
        cart_id = int(cursor.lastrowid or 0)
    row = conn.execute(
        "SELECT quantity FROM cart_items WHERE cart_id = ? AND product_id = ?",
        (cart_id, product_id),
    ).fetchone()
    if row is None:
        count = conn.execute(
            "SELECT count(*) FROM cart_items WHERE cart_id = ?", (cart_id,)
        ).fetchone()[0]
        if count >= MAX_LINES:
            raise QuantityError(f"A cart holds at most {MAX_LINES} different products.")
        conn.execute(
            "INSERT INTO cart_items (cart_id, product_id, quantity, added_at) VALUES (?, ?, ?, ?)",
            (cart_id, product_id, quantity, timestamp()),
        )
    else:
        if row["quantity"] + quantity > MAX_QUANTITY:
            raise QuantityError(
                f"You can order at most {MAX_QUANTITY} of one product;"
                f" your cart already holds {row['quantity']}."
            )
        conn.execute(
            "UPDATE cart_items SET quantity = quantity + ? WHERE cart_id = ? AND product_id = ?",
            (quantity, cart_id, product_id),
        )
    _touch(conn, cart_id)
    return token


def _set_quantity(conn: sqlite3.Connection, token: str, product_id: int, quantity: int) -> bool:
    cart_id = _cart_id(conn, token)
    if cart_id is None:
        return False
    cursor = conn.execute(
        "UPDATE cart_items SET quantity = ? WHERE cart_id = ? AND product_id = ?",
        (quantity, cart_id, product_id),
    )
    _touch(conn, cart_id)
    return cursor.rowcount == 1


def _remove(conn: sqlite3.Connection, token: str, product_id: int) -> bool:
    cart_id = _cart_id(conn, token)
    if cart_id is None:
        return False
    cursor = conn.execute(
        "DELETE FROM cart_items WHERE cart_id = ? AND product_id = ?", (cart_id, product_id)
    )
    _touch(conn, cart_id)
    return cursor.rowcount == 1


def _drop_items(conn: sqlite3.Connection, cart_id: int, product_ids: Sequence[int]) -> None:
    for product_id in product_ids:
        conn.execute(
            "DELETE FROM cart_items WHERE cart_id = ? AND product_id = ?", (cart_id, product_id)
        )


def _delete_stale_carts(conn: sqlite3.Connection, before: float) -> int:
    cutoff = timestamp(before)
    conn.execute(
        "DELETE FROM cart_items WHERE cart_id IN (SELECT id FROM carts WHERE updated_at < ?)",
        (cutoff,),
    )
    return conn.execute("DELETE FROM carts WHERE updated_at < ?", (cutoff,)).rowcount


def empty_cart(conn: sqlite3.Connection, cart_id: int) -> None:
    """Empty the cart an order was paid from (it may be gone already)."""
    conn.execute("DELETE FROM cart_items WHERE cart_id = ?", (cart_id,))


def insert_lines(conn: sqlite3.Connection, order_id: int, lines: Sequence[LineRequest]) -> None:
    """Add the order's lines, reserving counted stock; OutOfStock (roll back) if short.

    Each reservation is one conditional update, so of several checkouts racing
    for the last units only as many win as there are units; every line is
    tried first so the shopper hears about all short products at once.
    """
    short: list[tuple[str, int]] = []
    for line in lines:
        cursor = conn.execute(
            "UPDATE products SET reserved = reserved + ?"
            " WHERE id = ? AND stock IS NOT NULL AND stock - reserved >= ?",
            (line.quantity, line.product_id, line.quantity),
        )
        state = "active"
        if cursor.rowcount != 1:
            row = conn.execute(
                "SELECT stock, reserved FROM products WHERE id = ?", (line.product_id,)
            ).fetchone()
            if row["stock"] is not None:
                short.append((line.name, max(row["stock"] - row["reserved"], 0)))
                continue
            state = "none"
        conn.execute(
            "INSERT INTO order_lines (order_id, product_id, name, quantity, unit_amount,"
            " reservation) VALUES (?, ?, ?, ?, ?, ?)",
            (order_id, line.product_id, line.name, line.quantity, line.unit_amount, state),
        )
    if short:
        raise OutOfStock(short)


def order_number_for(conn: sqlite3.Connection) -> str:
    """A fresh order number no order carries yet."""
    while True:
        number = new_order_number()
        if not conn.execute("SELECT 1 FROM orders WHERE order_number = ?", (number,)).fetchone():
            return number


def settle_stock(conn: sqlite3.Connection, order_id: int, new: OrderStatus) -> str | None:
    """Release or convert the order's reservations for its new status; a flag reason or None.

    Expired, failed and aborted orders give their units back; a paid one turns
    them into a sale. A payment for an order whose units were already given
    back takes them again only if they are still there, else it says why.
    """
    if new in (OrderStatus.EXPIRED, OrderStatus.FAILED, OrderStatus.ABORTED):
        for line in _lines(conn, order_id, "active"):
            conn.execute(
                "UPDATE products SET reserved = reserved - ? WHERE id = ? AND reserved >= ?",
                (line["quantity"], line["product_id"], line["quantity"]),
            )
            _mark(conn, line["id"], "active", "released")
        return None
    if new not in (OrderStatus.PAID, OrderStatus.REFUNDED):
        return None
    for line in _lines(conn, order_id, "active"):
        quantity = line["quantity"]
        # A shopkeeper may have lowered the stock meanwhile: never below zero.
        conn.execute(
            "UPDATE products SET reserved = reserved - ?,"
            " stock = CASE WHEN stock >= ? THEN stock - ? ELSE 0 END"
            " WHERE id = ? AND reserved >= ?",
            (quantity, quantity, quantity, line["product_id"], quantity),
        )
        _mark(conn, line["id"], "active", "converted")
    oversold = []
    for line in _lines(conn, order_id, "released"):
        cursor = conn.execute(
            "UPDATE products SET stock = stock - ? WHERE id = ? AND stock - reserved >= ?",
            (line["quantity"], line["product_id"], line["quantity"]),
        )
        if cursor.rowcount != 1:
            oversold.append(line["name"])
        _mark(conn, line["id"], "released", "converted")
    if oversold:
        return "paid after its stock was released, and none is left of: " + ", ".join(oversold)
    return None


def record_line_amounts(conn: sqlite3.Connection, order_id: int, paid: EventOutcome) -> str | None:
    """Store each line's discount, tax and total from Stripe's line items; a flag reason or None.

    Nothing is stored when the line items do not fit the order (the flag says why)
    or when Stripe's answer came without them.
    """
    if not paid.lines:
        if paid.discount == 0 and paid.tax == 0:
            # Nothing taken off or added: each line cost its price times its quantity.
            conn.execute(
                "UPDATE order_lines SET amount_discount = 0, amount_tax = 0,"
                " amount_total = unit_amount * quantity WHERE order_id = ?",
                (order_id,),
            )
        return None
    ours = conn.execute(
        "SELECT id, name, quantity, unit_amount FROM order_lines WHERE order_id = ? ORDER BY id",
        (order_id,),
    ).fetchall()
    if (reason := lines_mismatch(ours, paid)) is not None:
        return f"line items refused: {reason}"
    for row, line in zip(ours, paid.lines, strict=True):
        conn.execute(
            "UPDATE order_lines SET amount_discount = ?, amount_tax = ?, amount_total = ?"
            " WHERE id = ?",
            (line.discount, line.tax, line.total, row["id"]),
        )
    return None


def _record_lines(conn: sqlite3.Connection, order_id: int, paid: EventOutcome) -> str | None:
    from storefront.store.sqlite import flag  # the store module imports this one

    status = conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
    if status is None or status["status"] not in LINES_DUE_STATUSES:
        return None
    reason = record_line_amounts(conn, order_id, paid)
    if reason is not None:
        flag(conn, order_id, reason)
    return reason


def _lines(conn: sqlite3.Connection, order_id: int, state: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, product_id, name, quantity FROM order_lines"
        " WHERE order_id = ? AND reservation = ?",
        (order_id, state),
    ).fetchall()


def _mark(conn: sqlite3.Connection, line_id: int, before: str, after: str) -> None:
    conn.execute(
        "UPDATE order_lines SET reservation = ? WHERE id = ? AND reservation = ?",
        (after, line_id, before),
    )
