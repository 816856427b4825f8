"""Alembic's entry: run the migrations on the database the configuration names."""

from __future__ import annotations

from alembic import context

from storefront.migrations import engine


def run() -> None:
    """Migrate online (there is no offline SQL generation)."""
    eng = engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with eng.connect() as connection:
            context.configure(
                connection=connection,
                transactional_ddl=True,
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        eng.dispose()


run()
