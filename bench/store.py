"""The webhook's apply transaction on three data-access paths, side by side (issue 12).

Each transaction is the one ``store.sqlite.record_and_apply`` runs for a paying
``checkout.session.completed``: record the event id (deduped), find the order by
session, read it, move it with a conditional update, add its timeline row.
Paths, interleaved round by round on fresh copies of one database:

- ``today``: a plain function of a ``sqlite3.Connection`` run whole on the
  writer thread by ``storefront.db.Database.write`` (one trip per transaction);
- ``sa-sync``: the same function written with SQLAlchemy Core on a sync
  ``Connection``, run on one writer thread (still one trip per transaction);
- ``sa-async``: SQLAlchemy Core's async engine (``sqlite+aiosqlite``), one
  awaited call per statement, one connection so writers never interleave.

Run: ``.venv/bin/python -m bench.store [--orders 3000] [--concurrency 64] [--rounds 3]``.
It prints a Markdown table; ``bench/STORE.md`` records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import create_async_engine

from storefront.db import Database, init_db

NOW = "2026-01-01T00:00:00.000Z"

meta = sa.MetaData()
orders_t = sa.Table(
    "orders",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("stripe_session_id", sa.Text),
    sa.Column("payment_intent", sa.Text),
    sa.Column("customer_email", sa.Text),
    sa.Column("amount_total", sa.Integer),
    sa.Column("currency", sa.Text),
    sa.Column("updated_at", sa.Text),
)
events_t = sa.Table(
    "order_events",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer),
    sa.Column("status", sa.Text),
    sa.Column("source", sa.Text),
    sa.Column("stripe_event_id", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.Text),
)
webhooks_t = sa.Table(
    "webhook_events",
    meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text),
    sa.Column("received_at", sa.Text),
)


def _seed(path: Path, count: int) -> None:
    """A database with one product and ``count`` pending orders with sessions."""
    asyncio.run(init_db(path))
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO products (slug, name, unit_amount, currency)"
            " VALUES ('m', 'M', 100, 'eur')"
        )
        conn.executemany(
            "INSERT INTO orders (token, product_id, amount_total, currency, stripe_session_id)"
            " VALUES (?, 1, 100, 'eur', ?)",
            [(f"tok{i}", f"cs_{i}") for i in range(count)],
        )
    conn.close()


# --- today: sqlite3 on the writer thread -------------------------------------------------


def _apply_raw(conn: Any, i: int) -> bool:
    cur = conn.execute(
        "INSERT INTO webhook_events (id, type, received_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (f"evt_{i}", "checkout.session.completed", NOW),
    )
    if cur.rowcount != 1:
        return False
    row = conn.execute(
        "SELECT id FROM orders WHERE stripe_session_id = ?", (f"cs_{i}",)
    ).fetchone()
    order = conn.execute("SELECT * FROM orders WHERE id = ?", (row[0],)).fetchone()
    cur = conn.execute(
        "UPDATE orders SET status = ?, payment_intent = coalesce(?, payment_intent),"
        " updated_at = ? WHERE id = ? AND status = ?",
        ("paid", f"pi_{i}", NOW, order["id"], "pending"),
    )
    if cur.rowcount != 1:
        return False
    conn.execute(
        "INSERT INTO order_events (order_id, status, source, stripe_event_id, note, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (order["id"], "paid", "webhook", f"evt_{i}", None, NOW),
    )
    return True


async def _run_today(path: Path, n: int, concurrency: int) -> float:
    db = Database(path, create=False)
    await db.open()
    try:
        return await _drive(lambda i: db.write(_apply_raw, i), n, concurrency)
    finally:
        await db.close()


# --- SQLAlchemy Core, sync Connection on one writer thread -------------------------------


# Built once, as today's SQL strings are: building a Core statement per call costs
# more than running it (coercion and cache-key work, seen with cProfile).
RECORD_EVENT = (
    sqlite_insert(webhooks_t)
    .values(id=sa.bindparam("eid"), type=sa.bindparam("etype"), received_at=sa.bindparam("now"))
    .on_conflict_do_nothing()
)
FIND_BY_SESSION = sa.select(orders_t.c.id).where(
    orders_t.c.stripe_session_id == sa.bindparam("sid")
)
READ_ORDER = sa.select(orders_t).where(orders_t.c.id == sa.bindparam("oid"))
MOVE = (
    sa.update(orders_t)
    .where(orders_t.c.id == sa.bindparam("oid"), orders_t.c.status == sa.bindparam("before"))
    .values(
        status=sa.bindparam("after"),
        payment_intent=sa.func.coalesce(sa.bindparam("pi"), orders_t.c.payment_intent),
        updated_at=sa.bindparam("now"),
    )
)
TIMELINE = (
    sqlite_insert(events_t)
    .values(
        order_id=sa.bindparam("oid"),
        status=sa.bindparam("after"),
        source=sa.bindparam("source"),
        stripe_event_id=sa.bindparam("eid"),
        note=sa.bindparam("note"),
        created_at=sa.bindparam("now"),
    )
    .on_conflict_do_nothing()
)


def _params(i: int) -> dict[str, Any]:
    return {
        "eid": f"evt_{i}",
        "etype": "checkout.session.completed",
        "now": NOW,
        "sid": f"cs_{i}",
        "before": "pending",
        "after": "paid",
        "pi": f"pi_{i}",
        "source": "webhook",
        "note": None,
    }


def _apply_core(conn: sa.Connection, i: int) -> bool:
    p = _params(i)
    if conn.execute(RECORD_EVENT, p).rowcount != 1:
        return False
    order_id = conn.execute(FIND_BY_SESSION, p).scalar_one()
    order = conn.execute(READ_ORDER, {"oid": order_id}).one()
    if conn.execute(MOVE, {**p, "oid": order.id}).rowcount != 1:
        return False
    conn.execute(TIMELINE, {**p, "oid": order.id})
    return True


def _sqlite_engine_events(engine: sa.Engine) -> None:
    """Take the write lock at BEGIN (BEGIN IMMEDIATE), as today's writer does."""

    @sa_event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 5000"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @sa_event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def _run_sa_sync(path: Path, n: int, concurrency: int) -> float:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.StaticPool)
    _sqlite_engine_events(engine)
    executor = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    holder: dict[str, sa.Connection] = {}

    def connect() -> None:
        holder["conn"] = engine.connect()

    def transaction(i: int) -> bool:
        conn = holder["conn"]
        with conn.begin():
            return _apply_core(conn, i)

    await loop.run_in_executor(executor, connect)
    try:
        return await _drive(
            lambda i: loop.run_in_executor(executor, transaction, i), n, concurrency
        )
    finally:
        await loop.run_in_executor(executor, holder["conn"].close)
        executor.shutdown()
        engine.dispose()


# --- SQLAlchemy Core, async engine (sqlite+aiosqlite) ------------------------------------


async def _run_sa_async(path: Path, n: int, concurrency: int) -> float:
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", pool_size=1, max_overflow=0, pool_timeout=600
    )
    _sqlite_engine_events(engine.sync_engine)

    async def one(i: int) -> bool:
        p = _params(i)
        async with engine.begin() as conn:
            if (await conn.execute(RECORD_EVENT, p)).rowcount != 1:
                return False
            order_id = (await conn.execute(FIND_BY_SESSION, p)).scalar_one()
            order = (await conn.execute(READ_ORDER, {"oid": order_id})).one()
            if (await conn.execute(MOVE, {**p, "oid": order.id})).rowcount != 1:
                return False
            await conn.execute(TIMELINE, {**p, "oid": order.id})
            return True

    try:
        return await _drive(one, n, concurrency)
    finally:
        await engine.dispose()


async def _drive(fn: Callable[[int], Awaitable[bool]], n: int, concurrency: int) -> float:
    """Run ``fn(0..n-1)`` with ``concurrency`` tasks in flight; transactions a second."""
    queue = iter(range(n))
    applied = 0

    async def worker() -> None:
        nonlocal applied
        for i in queue:
            # Awaited first: `applied += await …` would read applied before the await.
            ok = await fn(i)
            applied += ok

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    # Every order must have moved, or the figure measures something else.
    assert applied == n, f"only {applied} of {n} transactions applied"
    return n / elapsed


PATHS = {"today": _run_today, "sa-sync": _run_sa_sync, "sa-async": _run_sa_async}


def main() -> None:
    """Measure each path, interleaved per round, and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {name: [] for name in PATHS}
    ratios: dict[str, list[float]] = {name: [] for name in PATHS}
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.db"
        _seed(seed, args.orders)
        for r in range(args.rounds):
            this_round = {}
            for name, run in PATHS.items():
                path = Path(tmp) / f"{name}-{r}.db"
                shutil.copy(seed, path)
                this_round[name] = asyncio.run(run(path, args.orders, args.concurrency))
                figures[name].append(this_round[name])
            for name in PATHS:
                ratios[name].append(this_round[name] / this_round["today"])
    print(
        f"{args.orders} transactions, {args.concurrency} in flight, "
        f"median of {args.rounds} rounds (min-max)\n"
    )
    print("| path | transactions/s | vs today (median of per-round ratios) |")
    print("|---|---|---|")
    for name in PATHS:
        f = figures[name]
        print(
            f"| {name} | {statistics.median(f):.0f} ({min(f):.0f}-{max(f):.0f}) "
            f"| {statistics.median(ratios[name]):.2f} |"
        )


if __name__ == "__main__":
    main()
