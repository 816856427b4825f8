"""schema.sql, the readable whole schema, is exactly what the migrations build."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from storefront import migrations
from storefront.db import migrate
from storefront.resources import SCHEMA


def _text(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value)).strip()


def normalized(path: Path) -> dict[str, Any]:
    """Tables, columns, keys, checks and indexes (with their WHERE), order-free."""
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        shape: dict[str, Any] = {}
        for table in inspector.get_table_names():
            if table == "alembic_version":
                continue
            shape[table] = {
                "columns": {
                    (c["name"], str(c["type"]), c["nullable"], _text(c["default"]))
                    for c in inspector.get_columns(table)
                },
                "pk": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
                "unique": {
                    tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
                },
                "foreign": {
                    (tuple(f["constrained_columns"]), f["referred_table"])
                    for f in inspector.get_foreign_keys(table)
                },
                "checks": {_text(c["sqltext"]) for c in inspector.get_check_constraints(table)},
            }
    finally:
        engine.dispose()
    with sqlite3.connect(path) as conn:
        shape["indexes"] = {
            name: _text(sql).replace("IF NOT EXISTS ", "")
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    return shape


def test_schema_sql_equals_what_the_migrations_build(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated.sqlite3"
    migrate(migrated)
    written = tmp_path / "schema_sql.sqlite3"
    with sqlite3.connect(written) as conn:
        conn.executescript(SCHEMA.read_text(encoding="utf-8"))
    expected = normalized(written)
    assert set(expected) == {
        "products",
        "orders",
        "order_events",
        "webhook_events",
        "order_lines",
        "carts",
        "cart_items",
        "staff_users",
        "staff_sessions",
        "disputes",
        "outbox",
        "indexes",
    }
    assert expected["orders"]["checks"], "the reflection found no CHECK to compare"
    assert normalized(migrated) == expected


def test_head_is_the_newest_script() -> None:
    assert migrations.head() == migrations.HEAD
    assert set(migrations.LEGACY_REVISIONS.values()) <= migrations.revisions()
