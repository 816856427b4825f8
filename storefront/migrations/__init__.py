"""Versioned schema migrations (Alembic), shipped inside the package.

``storefront migrate`` (and ``init-db``) run them; the shop itself only
compares the database's revision with ``HEAD`` when it opens the database.
So SQLAlchemy and Alembic are imported only by the functions that run them:
a serving worker at ``HEAD`` never loads them (about 20 MB per worker).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config

FOLDER = Path(__file__).resolve().parent

# The newest revision; a unit test holds it to the scripts' head.
HEAD = "0005"

# Databases from before migrations recorded their schema in PRAGMA user_version.
LEGACY_REVISIONS = {1: "0001", 2: "0002"}


def config(url: str | None = None) -> Config:
    """An Alembic configuration (no ini file) for the database at ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(FOLDER))
    if url is not None:
        # ConfigParser interpolation: a literal % in a URL must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def revisions() -> set[str]:
    """Every revision the shipped scripts know."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(config())
    return {script.revision for script in scripts.walk_revisions()}


def head() -> str | None:
    """The scripts' head revision."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def upgrade(url: str) -> None:
    """Apply every migration the database lacks, each in its own transaction."""
    from alembic import command

    command.upgrade(config(url), "head")


def stamp(url: str, revision: str) -> None:
    """Record ``revision`` as the database's schema without running anything."""
    from alembic import command

    command.stamp(config(url), revision)


def sync_url(url: str) -> str:
    """The SQLAlchemy URL Alembic runs on: PostgreSQL through psycopg 3 (the shop uses asyncpg)."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def engine(url: str) -> sa.Engine:
    """An engine for migrations; SQLite gets transactional DDL, which its driver lacks."""
    import sqlalchemy as sa

    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    if eng.dialect.name == "sqlite":

        @sa.event.listens_for(eng, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # Autocommit in the driver, so BEGIN below is the only transaction and
            # a failed migration's CREATEs and ALTERs roll back with it.
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA foreign_keys = ON")
            dbapi_conn.execute("PRAGMA busy_timeout = 5000")

        @sa.event.listens_for(eng, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return eng
