"""The SQLite database: one writer connection, one reader, the schema."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"
SCHEMA_VERSION = 1

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)
DEFAULT_BUSY_TIMEOUT_MS = 5000


async def _connect(path: Path, busy_timeout_ms: int) -> aiosqlite.Connection:
    # isolation_level=None: autocommit, so transactions are exactly the
    # BEGIN … COMMIT we write and nothing is left open by accident.
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    for pragma in (*_PRAGMAS, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}"):
        await conn.execute(pragma)
    return conn


class Database:
    """Owns the connections; every write goes through ``transaction()``.

    Tasks sharing one aiosqlite connection share its transaction, so writes
    are serialised by a lock and run as ``BEGIN IMMEDIATE`` … ``COMMIT`` on
    the writer. Reads use a second connection and see only committed rows.
    """

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        """Open both connections, creating the schema if needed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await _connect(self.path, self.busy_timeout_ms)
        await apply_schema(self._writer)
        self._reader = await _connect(self.path, self.busy_timeout_ms)

    async def close(self) -> None:
        """Close both connections."""
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a block as one write transaction; roll back if it raises."""
        assert self._writer is not None, "database is not open"
        writer = self._writer
        async with self._write_lock:
            try:
                await writer.execute("BEGIN IMMEDIATE")
                yield writer
                await writer.execute("COMMIT")
            except BaseException:
                # Also when BEGIN or COMMIT itself failed or was cancelled (a
                # client hanging up cancels its request): aiosqlite runs calls in
                # order on its thread, and ``rollback()`` does nothing outside a
                # transaction, so the writer is never left inside one.
                await writer.rollback()
                raise

    # Each read runs whole (execute and fetch) in one call on aiosqlite's thread.
    # A cursor left open between awaits would keep the shared reader's read
    # transaction alive, and every other task's read would then see that old
    # snapshot: a row committed a moment ago would be missing.
    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        """Run a read query and return its first row, if any (meant for one-row queries)."""
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        """Run a read query and return all its rows."""
        assert self._reader is not None, "database is not open"
        return list(await self._reader.execute_fetchall(sql, tuple(params)))


async def apply_schema(conn: aiosqlite.Connection) -> None:
    """Create every table that is missing and record the schema version."""
    await conn.executescript(SCHEMA.read_text(encoding="utf-8"))
    await conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


async def init_db(path: Path | str) -> None:
    """Create the database file and its schema (safe to run again)."""
    db = Database(path)
    await db.open()
    await db.close()
    log.info("database ready at %s", path)
