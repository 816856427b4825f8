"""The SQLite database: a writer thread, an aiosqlite reader, its schema's revision."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storefront import migrations
from storefront.config import ConfigError

log = logging.getLogger(__name__)

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)
DEFAULT_BUSY_TIMEOUT_MS = 5000

T = TypeVar("T")
# A queued write: the function, its arguments, and the future its caller awaits.
_Job = tuple[Callable[..., Any], tuple[Any, ...], "Future[Any]"]


class DatabaseMissing(ConfigError):
    """The database file does not exist, and this caller must not create it."""


def require_database(path: Path) -> None:
    """Raise DatabaseMissing, saying how to create it, unless ``path`` is a file."""
    if not path.is_file():
        raise DatabaseMissing(
            f"no database at {path}: create it with `storefront init-db` "
            "(or set STOREFRONT_DATABASE to the existing file)"
        )


class DatabaseGone(RuntimeError):
    """The database file was deleted or replaced under the running shop."""


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's device and inode, or None if nothing is there."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


async def _connect_reader(path: Path, busy_timeout_ms: int) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    for pragma in (*_PRAGMAS, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}"):
        await conn.execute(pragma)
    return conn


def _connect_writer(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    # isolation_level=None: autocommit, so transactions are exactly the
    # BEGIN … COMMIT that Database.write runs and nothing is left open.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for pragma in (*_PRAGMAS, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}"):
        conn.execute(pragma)
    try:
        check_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class Database:
    """Owns the connections: writes run on one writer thread, reads via aiosqlite.

    A write is a plain function of a ``sqlite3.Connection`` that ``write()``
    runs whole, inside ``BEGIN IMMEDIATE`` … ``COMMIT``, on a thread of its
    own. One thread runs one function at a time, so transactions never
    interleave (tasks sharing an aiosqlite connection would share its
    transaction), a task cancelled while waiting cannot leave a transaction
    half-open, and a transaction costs one trip to the thread instead of one
    per statement while holding a lock. Writes that queue up while the thread
    is busy share one ``BEGIN IMMEDIATE`` … ``COMMIT`` (group commit), each
    in a savepoint of its own: one that raises is rolled back alone and its
    caller gets its error; if the commit fails, every caller does. Reads go
    through an aiosqlite connection and see only committed rows (WAL).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        create: bool = True,
    ):
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        # False for the running shop: a missing file means a wrong path or a lost
        # disk, and an empty new database would hide every order.
        self.create = create
        self._executor: ThreadPoolExecutor | None = None
        # Writes waiting for the writer thread, and whether it is draining them.
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._draining = False
        self._writer: sqlite3.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._file: tuple[int, int] | None = None

    async def open(self) -> None:
        """Open both connections; with ``create``, make or migrate the database first.

        Without ``create`` (the running shop) a database whose schema is not this
        shop's head is refused with a SchemaError saying what to run.
        """
        if self.create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(migrate, self.path)
        else:
            require_database(self.path)
        # Absolute, so the identity check below is immune to a change of directory.
        self.path = self.path.absolute()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        # Made on the writer thread itself: sqlite3 connections stay on theirs.
        self._writer = await self._on_writer_thread(
            _connect_writer, self.path, self.busy_timeout_ms
        )
        self._file = _identity(self.path)
        self._reader = await _connect_reader(self.path, self.busy_timeout_ms)

    async def close(self) -> None:
        """Close both connections and stop the writer thread."""
        if self._reader is not None:
            await self._reader.close()
        if self._writer is not None:
            await self._on_writer_thread(self._writer.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._reader = self._writer = self._executor = None

    async def _on_writer_thread(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._executor is not None, "database is not open"
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def write(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args, **kwargs)`` as one write transaction; roll back if it raises.

        If the awaiting task is cancelled the transaction still finishes on its
        thread, committed or rolled back whole (unless it had not started yet).
        """
        assert self._executor is not None, "database is not open"
        job: Future[T] = Future()
        with self._queue_lock:
            self._queue.append((partial(fn, **kwargs), args, job))
            idle, self._draining = not self._draining, True
        if idle:
            self._executor.submit(self._drain)
        return await asyncio.wrap_future(job)

    def _drain(self) -> None:
        # Group commit: the writes queued meanwhile share one BEGIN … COMMIT,
        # each in a savepoint of its own (bench/CPU.md).
        while True:
            with self._queue_lock:
                # A job whose caller was cancelled before it started is dropped.
                batch = [item for item in self._queue if item[2].set_running_or_notify_cancel()]
                self._queue.clear()
                if not batch:
                    self._draining = False
                    return
            self._transactions(batch)

    def _transactions(self, batch: list[_Job]) -> None:
        """Run each job in its own savepoint inside one transaction; then answer each."""
        conn = self._writer
        assert conn is not None, "database is not open"
        done: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, args, job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    done.append((job, fn(conn, *args), None))
                except Exception as error:
                    if not conn.in_transaction:
                        raise  # SQLite rolled everything back (disk full, I/O error)
                    conn.execute("ROLLBACK TO job")
                    done.append((job, None, error))
                conn.execute("RELEASE job")
            self._check_file()
            conn.execute("COMMIT")
        except BaseException as error:
            # Nothing of the batch is committed: every caller hears why (its own error first).
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            own = {id(job): failure for job, _, failure in done if failure is not None}
            for _, _, job in batch:
                job.set_exception(own.get(id(job), error))
            return
        for job, result, failure in done:
            if failure is None:
                job.set_result(result)
            else:
                job.set_exception(failure)

    def _check_file(self) -> None:
        # A deleted file stays writable through our open handle, so every
        # commit would "succeed" into a file no one will ever open again (and
        # a webhook answered 200 is never resent). One stat per transaction
        # costs microseconds.
        if _identity(self.path) != self._file:
            raise DatabaseGone(
                f"the database file {self.path} was deleted or replaced while the shop "
                "runs; writes are refused until it is restored and the shop restarted"
            )

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


class SchemaError(ConfigError):
    """The database's schema is not the one this shop runs on."""


def _schema_state(conn: sqlite3.Connection) -> tuple[str | None, int, bool]:
    """The recorded revision, the legacy ``user_version`` and whether the shop's tables exist."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    revision = None
    if "alembic_version" in tables:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    return revision, user_version, "orders" in tables


def check_revision(revision: str | None, before: str = "nothing (an empty database)") -> None:
    """Raise SchemaError, in one line saying what to do, unless ``revision`` is the head.

    ``before`` names a database without a revision; both backends share the wording.
    """
    if revision == migrations.HEAD:
        return
    if revision is not None and revision not in migrations.revisions():
        raise SchemaError(
            f"database schema {revision} is newer than this shop's {migrations.HEAD}: "
            "run the shop that wrote it"
        )
    raise SchemaError(
        f"database schema is at {revision or before}, this shop needs {migrations.HEAD}: "
        "run `storefront migrate`"
    )


def check_schema(conn: sqlite3.Connection) -> None:
    """Raise SchemaError, in one line saying what to do, unless the schema is at head."""
    revision, user_version, _ = _schema_state(conn)
    check_revision(revision, f"version {user_version} (before migrations)")


def require_schema(path: Path) -> None:
    """Raise SchemaError unless the database at ``path`` is at the head revision."""
    # Read-only: checking must never create or change anything.
    conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)
    try:
        check_schema(conn)
    finally:
        conn.close()


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def migrate(path: Path | str) -> str:
    """Bring the database at ``path`` to the head revision; return the revision it was at.

    A database made before migrations is first stamped with the revision its
    ``PRAGMA user_version`` stands for; one from a newer shop is refused untouched.
    """
    path = Path(path)
    conn = sqlite3.connect(path)
    try:
        revision, user_version, has_tables = _schema_state(conn)
    finally:
        conn.close()
    url = _url(path)
    if revision is not None and revision not in migrations.revisions():
        raise SchemaError(
            f"database schema {revision} is newer than this shop's {migrations.HEAD}: "
            "run the shop that wrote it"
        )
    if revision is None and has_tables:
        newest = max(migrations.LEGACY_REVISIONS)
        if user_version > newest:
            raise SchemaError(
                f"database schema version {user_version} is newer than this shop's {newest}"
            )
        if user_version not in migrations.LEGACY_REVISIONS:
            raise SchemaError(
                f"database at {path} has tables but no schema version: not a shop database?"
            )
        revision = migrations.LEGACY_REVISIONS[user_version]
        migrations.stamp(url, revision)
        log.info("database adopted at schema %s (user_version %s)", revision, user_version)
    migrations.upgrade(url)
    if revision != migrations.HEAD:
        log.info("database migrated from %s to %s", revision or "empty", migrations.HEAD)
    return revision or "empty"


async def init_db(path: Path | str) -> None:
    """Create the database file and its schema (safe to run again)."""
    db = Database(path)
    await db.open()
    await db.close()
    log.info("database ready at %s", path)
