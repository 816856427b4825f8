"""Migrations: a database of today's version 1 or 2, holding orders, is adopted and upgraded.

`storefront migrate` stamps a database made before migrations with the revision
its ``PRAGMA user_version`` stands for, then applies the rest; the running shop
refuses any schema but the head, with one line saying what to run.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from storefront import migrations
from storefront.db import SchemaError, migrate
from storefront.orders import OrderStatus
from storefront.store.sqlite import SQLiteStore
from tests.pg import Cluster

# schema.sql as the shop shipped it at version 1, kept verbatim.
SCHEMA_V1 = Path(__file__).resolve().parent.parent / "data" / "schema_v1.sql"


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def revision(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "alembic_version" not in tables:
            return None
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


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


def make_v2_database(path: Path) -> None:
    """A database made just before migrations: revision 0002's schema at user_version 2."""
    from alembic import command

    command.upgrade(migrations.config(f"sqlite:///{path}"), "0002")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE alembic_version")
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO products (id, slug, name, unit_amount, currency)"
        " VALUES (1, 'mug', 'Mug', 1800, 'eur')"
    )
    conn.execute(
        "INSERT INTO orders (token, product_id, amount_total, currency, flag_reason)"
        " VALUES ('tok-flagged', 1, 1800, 'eur', 'looked odd')"
    )
    conn.close()


async def test_a_v1_database_with_orders_migrates_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    make_v1_database(path)
    with sqlite3.connect(path) as conn:
        assert "flag_reason" not in columns(conn, "orders")
        before = conn.execute("SELECT * FROM orders ORDER BY id").fetchall()

    assert migrate(path) == "0001"
    assert revision(path) == migrations.HEAD

    db = SQLiteStore(path, create=False)
    await db.open()
    try:
        found = await db.order_with_timeline("tok-paid")
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
        await db.flag(2, "checked after the upgrade")
        flagged = await db.order_by_id(2)
        assert flagged is not None and flagged.flag_reason == "checked after the upgrade"
    finally:
        await db.close()

    with sqlite3.connect(path) as conn:
        assert {"expires_at", "flag_reason", "flagged_at"} <= columns(conn, "orders")
        assert "note" in columns(conn, "order_events")
        after = conn.execute("SELECT * FROM orders ORDER BY id").fetchall()
        old = len(before[0])
        # Every old value is where it was (the new columns come last), except that
        # flagging order 2 moved its updated_at, as every write to an order does.
        assert [row[:old] for row in after if row[0] != 2] == [r for r in before if r[0] != 2]
        assert after[1][: old - 1] == before[1][:-1] and after[1][old - 1] > before[1][-1]
        assert conn.execute("SELECT count(*) FROM order_events").fetchone()[0] == 3
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_the_shop_refuses_an_old_schema_untouched_and_says_to_migrate(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v1.sqlite3"
    make_v1_database(path)
    db = SQLiteStore(path, create=False)
    with pytest.raises(SchemaError, match=r"version 1 .*run `storefront migrate`"):
        await db.open()
    await db.close()
    with sqlite3.connect(path) as conn:
        assert "flag_reason" not in columns(conn, "orders")
    assert revision(path) is None


def test_a_v2_database_is_adopted_without_running_anything(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    make_v2_database(path)
    assert migrate(path) == "0002"
    assert revision(path) == migrations.HEAD
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT flag_reason FROM orders").fetchall() == [("looked odd",)]


def test_migrating_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    make_v1_database(path)
    migrate(path)
    with sqlite3.connect(path) as conn:
        schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert migrate(path) == migrations.HEAD
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


async def test_a_database_from_a_newer_shop_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    make_v1_database(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 3")
    db = SQLiteStore(path)
    with pytest.raises(SchemaError, match="newer"):
        await db.open()
    await db.close()
    with sqlite3.connect(path) as conn:
        assert "flag_reason" not in columns(conn, "orders")
    assert revision(path) is None


async def test_an_unknown_revision_is_refused_by_the_shop_and_by_migrate(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    migrate(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaError, match="9999 is newer"):
        migrate(path)
    db = SQLiteStore(path, create=False)
    with pytest.raises(SchemaError, match="9999 is newer"):
        await db.open()
    await db.close()


def test_the_migrate_command_upgrades_and_never_creates_a_database(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    make_v1_database(path)
    cli = [sys.executable, "-c", "import sys; from storefront.cli import main; sys.exit(main())"]
    done = subprocess.run(
        [*cli, "migrate", "--database", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert f"migrated from 0001 to {migrations.HEAD}" in done.stdout
    assert revision(path) == migrations.HEAD

    missing = tmp_path / "missing.sqlite3"
    done = subprocess.run(
        [*cli, "migrate", "--database", str(missing)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "storefront init-db" in done.stderr
    assert not missing.exists()


async def test_a_postgresql_database_at_0001_with_orders_upgrades_and_keeps_every_row(
    pg_cluster: Cluster,
) -> None:
    from alembic import command

    from storefront.store.postgres import PostgresStore
    from storefront.store.postgres import migrate as migrate_postgres

    url = pg_cluster.new_database(migrated=False)
    command.upgrade(migrations.config(migrations.sync_url(url)), "0001")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (id, slug, name, unit_amount, currency)"
            " VALUES (1, 'mug', 'Mug', 1800, 'eur')"
        )
        conn.execute(
            "INSERT INTO orders (id, token, product_id, amount_total, currency, status,"
            " stripe_session_id, payment_intent, customer_email) VALUES"
            " (1, 'tok-paid', 1, 1800, 'eur', 'paid', 'cs_test_1', 'pi_1', 'a@example.com'),"
            " (2, 'tok-open', 1, 1800, 'eur', 'pending', 'cs_test_2', NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO order_events (order_id, status, source) VALUES"
            " (1, 'pending', 'checkout'), (1, 'paid', 'webhook'), (2, 'pending', 'checkout')"
        )
    stuck = PostgresStore(url)
    with pytest.raises(SchemaError, match=r"at 0001, this shop needs .*storefront migrate"):
        await stuck.open()

    assert migrate_postgres(url) == "0001"
    store = PostgresStore(url)
    await store.open()
    try:
        paid = await store.order_with_timeline("tok-paid")
        assert paid is not None
        assert paid[0].status is OrderStatus.PAID and paid[0].flag_reason is None
        assert [e.status for e in paid[1]] == [OrderStatus.PENDING, OrderStatus.PAID]
        # The shop carries on with the old rows: the pending order can still expire.
        move = await store.transition(2, OrderStatus.EXPIRED, source="reconcile")
        assert move is not None
        # Identity columns go on past the explicit ids the old rows used.
        await store.execute("SELECT setval(pg_get_serial_sequence('orders', 'id'), 2)")
        fresh = await store.open_order(1, 1800, "eur", None)
        assert fresh.id == 3
    finally:
        await store.close()
    # Migrating again changes nothing.
    assert migrate_postgres(url) == migrations.HEAD
