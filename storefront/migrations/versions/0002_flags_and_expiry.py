"""Flags for the shopkeeper, the session's expiry, and a note per timeline row.

Revision ID: 0002
Revises: 0001

What ``PRAGMA user_version = 2`` meant before migrations: ``orders.expires_at``,
``flag_reason``, ``flagged_at``, ``order_events.note`` and the flagged-orders
index. Only nullable columns are added, which rewrites no rows.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# One list of statements per backend; a backend missing here refuses to migrate.
STATEMENTS = {
    "sqlite": [
        "ALTER TABLE orders ADD COLUMN expires_at INTEGER",
        "ALTER TABLE orders ADD COLUMN flag_reason TEXT",
        "ALTER TABLE orders ADD COLUMN flagged_at TEXT",
        "ALTER TABLE order_events ADD COLUMN note TEXT",
        "CREATE INDEX orders_flagged ON orders (flagged_at) WHERE flagged_at IS NOT NULL",
    ],
    # The same statements: ALTER TABLE … ADD COLUMN of a nullable column is portable.
    "postgresql": [
        "ALTER TABLE orders ADD COLUMN expires_at BIGINT",
        "ALTER TABLE orders ADD COLUMN flag_reason TEXT",
        "ALTER TABLE orders ADD COLUMN flagged_at TEXT",
        "ALTER TABLE order_events ADD COLUMN note TEXT",
        "CREATE INDEX orders_flagged ON orders (flagged_at) WHERE flagged_at IS NOT NULL",
    ],
}


def upgrade() -> None:
    """Add the columns and the index."""
    dialect = op.get_bind().dialect.name
    if dialect not in STATEMENTS:
        raise NotImplementedError(f"no migration 0002 for {dialect} databases")
    for statement in STATEMENTS[dialect]:
        op.execute(statement)
