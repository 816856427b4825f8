"""A database of schema version 1, holding orders, upgrades in place when the shop opens it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storefront import orders
from storefront.db import SCHEMA_VERSION, Database, SchemaError
from storefront.orders import OrderStatus

# schema.sql as the shop shipped it at version 1, kept verbatim.
SCHEMA_V1 = Path(__file__).resolve().parent.parent / "data" / "schema_v1.sql"


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def make_v1_database(path: Path) -> None:
    """Today's shop's database: the v1 schema, a product, a paid and a pending order."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SCHEMA_V1.read_text(encoding="utf-8"))
    conn.execute("PRAGMA user_version = 1")
    conn.executescript(
        """
        INSERT INTO products (id, slug, name, unit_amount, currency)
        VALUES (1, 'mug', 'Mug', 1800, 'eur');
        INSERT INTO orders (id, token, product_id, amount_total, currency, status,
                            stripe_session_id, payment_intent, customer_email)
        VALUES (1, 'tok-paid', 1, 1800, 'eur', 'paid', 'cs_test_1', 'pi_1', 'a@example.com'),
               (2, 'tok-open', 1, 1800, 'eur', 'pending', 'cs_test_2', NULL, NULL);
        INSERT INTO order_events (order_id, status, source) VALUES
            (1, 'pending', 'checkout'), (1, 'paid', 'webhook'), (2, 'pending', 'checkout');
        INSERT INTO webhook_events (id, type) VALUES ('evt_1', 'checkout.session.completed');
        """
    )
    conn.close()


async def test_a_v1_database_gains_the_new_columns_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    make_v1_database(path)
    with sqlite3.connect(path) as conn:
        assert "flag_reason" not in columns(conn, "orders")
        before = conn.execute("SELECT * FROM orders ORDER BY id").fetchall()

    db = Database(path)
    await db.open()
    try:
        found = await orders.get_with_timeline(db, "tok-paid")
        assert found is not None
        order, timeline = found
        assert (order.status, order.customer_email, order.flagged) == (
            OrderStatus.PAID,
            "a@example.com",
            False,
        )
        assert order.expires_at is None  # Stripe's default 24 h applies to these
        assert [(e.status, e.note) for e in timeline] == [
            (OrderStatus.PENDING, None),
            (OrderStatus.PAID, None),
        ]
        # The upgraded database works as a new one: an old open order can be flagged.
        open_order = await orders.get_by_id(db, 2)
        assert open_order is not None
        await db.write(orders.flag, open_order.id, "checked after the upgrade")
        flagged = await orders.get_by_id(db, 2)
        assert flagged is not None and flagged.flag_reason == "checked after the upgrade"
    finally:
        await db.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert {"expires_at", "flag_reason", "flagged_at"} <= columns(conn, "orders")
        assert "note" in columns(conn, "order_events")
        after = conn.execute("SELECT * FROM orders ORDER BY id").fetchall()
        # Every old value is where it was; the new columns come last.
        assert [row[: len(before[0])] for row in after] == before
        assert conn.execute("SELECT count(*) FROM order_events").fetchone()[0] == 3
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_opening_an_upgraded_database_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    make_v1_database(path)
    for _ in range(2):
        db = Database(path)
        await db.open()
        await db.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_a_database_from_a_newer_shop_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    make_v1_database(path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db = Database(path)
    with pytest.raises(SchemaError, match="newer"):
        await db.open()
    await db.close()
    with sqlite3.connect(path) as conn:
        assert "flag_reason" not in columns(conn, "orders")
