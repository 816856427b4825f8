"""Writes queued behind the writer thread share one commit, and each still stands alone."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storefront.db import Database, DatabaseGone


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "shop.sqlite3")
    await database.open()
    await database.write(lambda conn: conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)"))
    yield database
    await database.close()


def insert(conn: sqlite3.Connection, value: int) -> int:
    conn.execute("INSERT INTO t VALUES (?)", (value,))
    return value


def insert_then_fail(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t VALUES (99)")
    raise ValueError("changed my mind")


async def queued_behind_a_busy_writer(
    db: Database, jobs: list, busy: threading.Event
) -> list[asyncio.Future]:
    """Start ``jobs`` while the writer thread waits for ``busy``, so they queue up together."""
    first = asyncio.ensure_future(db.write(lambda conn: busy.wait(10)))
    await asyncio.sleep(0.05)
    tasks = [asyncio.ensure_future(db.write(fn, *args)) for fn, *args in jobs]
    await asyncio.sleep(0.05)
    busy.set()
    await first
    return tasks


async def test_queued_writes_share_a_commit_and_fail_alone(db: Database) -> None:
    statements: list[str] = []
    await db.write(lambda conn: conn.set_trace_callback(statements.append))
    jobs = [
        (insert, 1),
        (insert_then_fail,),
        (insert, 1),  # a duplicate of the first, in the same transaction: IntegrityError
        (insert, 2),
    ]
    tasks = await queued_behind_a_busy_writer(db, jobs, threading.Event())
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 1 and results[3] == 2
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], sqlite3.IntegrityError)
    # The failed ones left nothing behind; the others committed.
    assert [tuple(r) for r in await db.fetch_all("SELECT v FROM t ORDER BY v")] == [(1,), (2,)]
    # The trace job, the busy job, then one commit for the four queued behind it.
    assert statements.count("COMMIT") == 3
    assert statements.count("ROLLBACK TO job") == 2


def replace_file(path: Path) -> Path:
    """Move the database away and leave an empty file in its place; the moved path."""
    moved = path.with_name("moved.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        os.rename(f"{path}{suffix}", f"{moved}{suffix}")
    path.write_bytes(b"")
    return moved


async def test_a_batch_that_cannot_commit_fails_every_caller(db: Database) -> None:
    busy = threading.Event()
    first = asyncio.ensure_future(db.write(lambda conn: busy.wait(10)))
    await asyncio.sleep(0.05)
    tasks = [
        asyncio.ensure_future(db.write(insert, 1)),
        asyncio.ensure_future(db.write(insert_then_fail)),
    ]
    await asyncio.sleep(0.05)
    # The file is replaced while they wait: nothing may be committed into the old one.
    moved = replace_file(db.path)
    busy.set()
    with pytest.raises(DatabaseGone):
        await first
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], DatabaseGone)
    assert isinstance(results[1], ValueError)  # its own error, not the batch's
    with sqlite3.connect(moved) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


async def test_a_write_cancelled_before_it_started_never_runs(db: Database) -> None:
    busy = threading.Event()
    first = asyncio.ensure_future(db.write(lambda conn: busy.wait(10)))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(db.write(insert, 7))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.sleep(0.05)  # the cancellation reaches the queued job
    busy.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await db.write(insert, 8) == 8
    assert [tuple(r) for r in await db.fetch_all("SELECT v FROM t")] == [(8,)]
