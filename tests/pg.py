"""A throwaway PostgreSQL cluster for the test session, and a fresh database per test.

Debian's ``postgresql`` package (``.ci/run`` installs it) provides the server
binaries; nothing needs to be running beforehand. ``initdb`` refuses root, so as
root the cluster runs as the unprivileged ``postgres`` user. A missing server is
a failure, never a skip: the suites must prove both backends.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from storefront.serving import free_port

TEMPLATE = "storefront_head"
_names = itertools.count(1)


def _bin_dir() -> Path:
    """Where initdb and pg_ctl live (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        pytest.fail(
            "PostgreSQL is required for the postgresql-backend tests: "
            "apt-get install -y postgresql",
            pytrace=False,
        )
    return Path(candidates[-1]).parent


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class Cluster:
    """One initdb'd data folder with a server on a loopback port, trust auth."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.folder = Path(tempfile.mkdtemp(prefix="storefront-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            _as_server_user(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        # Durability is not under test: fsync off makes each test database cheap.
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=300"
        )
        subprocess.run(
            _as_server_user(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.folder / "server.log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_server_user(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
            ),
            capture_output=True,
        )
        # A session leaves hundreds of databases behind; deleting them on a loaded machine
        # can outlast the last test's timeout, which pytest charges this teardown to. The
        # server is down, so a detached `rm` can finish after the run.
        subprocess.Popen(
            ["rm", "-rf", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE DATABASE needs that)."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self, *, migrated: bool = True) -> str:
        """A fresh database: a copy of the migrated template, or empty; its URL."""
        name = f"shop_{next(_names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE if migrated else 'template0'}")
        return self.url(name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL server, with a template database at the head revision."""
    from storefront.store import postgres

    cluster = Cluster()
    try:
        cluster.start()
        cluster.admin(f"CREATE DATABASE {TEMPLATE}")
        postgres.migrate(cluster.url(TEMPLATE))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on; every parametrised suite runs on both."""
    return request.param


@pytest.fixture
def fresh_database(backend: str, request: pytest.FixtureRequest) -> Callable[[], str | None]:
    """Make another fresh migrated PostgreSQL database (its URL); on SQLite, None."""
    if backend == "sqlite":
        return lambda: None
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database


@pytest.fixture
def database_url(fresh_database: Callable[[], str | None]) -> str | None:
    """A fresh migrated PostgreSQL database's URL, or None on SQLite."""
    return fresh_database()
