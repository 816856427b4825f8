"""The first schema: products, orders, the order timeline, webhook events.

Revision ID: 0001
Revises:

Spelled as of this revision (statuses included), never regenerated: a later
change of the schema is a later revision. A database made before migrations
with ``PRAGMA user_version = 1`` is stamped here by ``storefront migrate``.
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_NOW_SQLITE = "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"

# One list of statements per backend; a backend missing here refuses to migrate.
STATEMENTS = {
    "sqlite": [
        f"""
        CREATE TABLE products (
            id          INTEGER PRIMARY KEY,
            slug        TEXT    NOT NULL UNIQUE
                        CHECK (length(slug) BETWEEN 1 AND 64 AND slug NOT GLOB '*[^a-z0-9-]*'),
            name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            description TEXT    NOT NULL DEFAULT '',
            unit_amount INTEGER NOT NULL CHECK (unit_amount > 0),
            currency    TEXT    NOT NULL
                        CHECK (length(currency) = 3 AND currency = lower(currency)),
            image       TEXT,
            active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            created_at  TEXT    NOT NULL DEFAULT {_NOW_SQLITE}
        )
        """,
        f"""
        CREATE TABLE orders (
            id                INTEGER PRIMARY KEY,
            token             TEXT    NOT NULL UNIQUE,
            product_id        INTEGER NOT NULL REFERENCES products (id),
            quantity          INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
            amount_total      INTEGER NOT NULL CHECK (amount_total > 0),
            currency          TEXT    NOT NULL,
            status            TEXT    NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'processing', 'paid', 'failed',
                                                'expired', 'refunded', 'aborted')),
            stripe_session_id TEXT    UNIQUE,
            checkout_attempt  TEXT    UNIQUE,
            payment_intent    TEXT,
            customer_email    TEXT,
            created_at        TEXT    NOT NULL DEFAULT {_NOW_SQLITE},
            updated_at        TEXT    NOT NULL DEFAULT {_NOW_SQLITE}
        )
        """,
        """
        CREATE INDEX orders_open_by_age ON orders (status, created_at)
            WHERE status IN ('pending', 'processing')
        """,
        """
        CREATE INDEX orders_by_payment_intent ON orders (payment_intent)
            WHERE payment_intent IS NOT NULL
        """,
        f"""
        CREATE TABLE order_events (
            id              INTEGER PRIMARY KEY,
            order_id        INTEGER NOT NULL REFERENCES orders (id),
            status          TEXT    NOT NULL,
            source          TEXT    NOT NULL,
            stripe_event_id TEXT,
            created_at      TEXT    NOT NULL DEFAULT {_NOW_SQLITE},
            UNIQUE (order_id, status)
        )
        """,
        f"""
        CREATE TABLE webhook_events (
            id          TEXT PRIMARY KEY,
            type        TEXT NOT NULL,
            received_at TEXT NOT NULL DEFAULT {_NOW_SQLITE}
        )
        """,
    ],
}


def upgrade() -> None:
    """Create the first schema's tables and indexes."""
    dialect = op.get_bind().dialect.name
    if dialect not in STATEMENTS:
        raise NotImplementedError(f"no migration 0001 for {dialect} databases")
    for statement in STATEMENTS[dialect]:
        op.execute(statement)
