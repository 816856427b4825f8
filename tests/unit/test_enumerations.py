"""Enumerations are defined once, in code: the schema and the queries follow the enums."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from storefront.orders import OrderStatus, timestamp
from storefront.resources import SCHEMA


def _quoted(text: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", text))


def test_the_schemas_status_check_lists_exactly_the_enums_statuses() -> None:
    schema = SCHEMA.read_text(encoding="utf-8")
    match = re.search(r"CHECK \(status IN \(([^)]*)\)\)", schema)
    assert match is not None, "orders.status lost its CHECK constraint"
    assert _quoted(match.group(1)) == {s.value for s in OrderStatus}


def test_the_open_orders_index_covers_exactly_the_statuses_that_are_not_final() -> None:
    schema = SCHEMA.read_text(encoding="utf-8")
    match = re.search(r"orders_open_by_age.*?WHERE status IN \(([^)]*)\)", schema, re.S)
    assert match is not None
    assert _quoted(match.group(1)) == {s.value for s in OrderStatus if not s.is_final}


def test_the_database_refuses_a_status_outside_the_enum(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "shop.db")
    conn.executescript(SCHEMA.read_text(encoding="utf-8"))
    conn.execute(
        "INSERT INTO products (slug, name, unit_amount, currency) VALUES ('m', 'M', 1, 'eur')"
    )
    for status in OrderStatus:
        conn.execute(
            "INSERT INTO orders (token, product_id, amount_total, currency, status)"
            " VALUES (?, 1, 1, 'eur', ?)",
            (f"t-{status.value}", status.value),
        )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO orders (token, product_id, amount_total, currency, status)"
            " VALUES ('t-x', 1, 1, 'eur', 'shipped')"
        )
    conn.close()


def test_timestamps_match_the_schemas_default_text(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "clock.db")
    # The schema's defaults write strftime('%Y-%m-%dT%H:%M:%fZ'); ours must sort with them.
    (sqlite_text,) = conn.execute(
        "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 1767268800.25, 'unixepoch')"
    ).fetchone()
    conn.close()
    assert timestamp(1767268800.25) == sqlite_text == "2026-01-01T12:00:00.250Z"
    assert timestamp(1767268800.25) < timestamp(1767268801.0)
