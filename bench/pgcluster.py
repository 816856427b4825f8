"""A throwaway PostgreSQL cluster for the scale-out rounds, and the rows they need.

Debian's ``postgresql`` package provides the binaries; nothing runs beforehand.
``initdb`` refuses root, so as root the cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from bench.fixtures import PRODUCTS, Ingested, PendingOrder, new_pending_orders
from bench.procs import HOST, free_port, run, tool, tree


def _bin_dir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError(
            "PostgreSQL is required for the scale-out rounds: apt-get install postgresql"
        )
    return Path(candidates[-1]).parent


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Cluster:
    """One initdb'd data folder with a server on a loopback port, trust auth, for one run."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()

    def url(self, database: str) -> str:
        """The URL of one database on this cluster."""
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def __enter__(self) -> Cluster:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres"]
        initdb += ["--auth=trust", "--encoding=UTF8", "--no-sync"]
        subprocess.run(_as_server_user(initdb), check=True, capture_output=True)
        # Commits are not flushed one by one, like the shop's SQLite (WAL,
        # synchronous=NORMAL): both keep every commit through a process crash.
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses={HOST}"
            " -c synchronous_commit=off -c max_connections=200 -c shared_buffers=128MB"
        )
        start = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options]
        start += ["-l", str(self.folder / "server.log"), "-w", "start"]
        subprocess.run(_as_server_user(start), check=True, capture_output=True)
        return self

    def __exit__(self, *exc: object) -> None:
        stop = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        subprocess.run(_as_server_user(stop), capture_output=True, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def pids(self) -> list[int]:
        """The postmaster and every backend, checkpointer and writer it runs."""
        first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        return tree(int(first))

    def new_database(self, name: str) -> str:
        """A database migrated to the head revision with the sample products; its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = self.url(name)
        env = {"STOREFRONT_DATABASE_URL": url}
        run([tool("storefront"), "migrate"], env, timeout=120)
        run([tool("storefront"), "import-products", str(PRODUCTS)], env, timeout=120)
        return url


def add_pending_orders(url: str, count: int, tag: str) -> list[PendingOrder]:
    """Insert pending orders with session ids, as checkout would have left them."""
    orders = new_pending_orders(count, tag)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT id, unit_amount, currency FROM products ORDER BY id LIMIT 1"
        ).fetchone()
        assert row is not None
        product_id, amount, currency = row
        copy = (
            "COPY orders (token, product_id, amount_total, currency, stripe_session_id) FROM STDIN"
        )
        with conn.cursor() as cursor, cursor.copy(copy) as rows:
            for o in orders:
                rows.write_row((o.token, product_id, amount, currency, o.session_id))
    return orders


def count_ingested(url: str, tag: str) -> Ingested:
    """Committed webhook_events rows and paid orders of one tag."""
    # One statement, one snapshot: an event committing between two counts would
    # look like a paid order without its event.
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM webhook_events WHERE id LIKE %s),"
            " (SELECT count(*) FROM orders WHERE stripe_session_id LIKE %s AND status = 'paid')",
            (f"evt_bench_{tag}_%", f"cs_bench_{tag}_%"),
        ).fetchone()
    assert row is not None
    return Ingested(int(row[0]), int(row[1]))
