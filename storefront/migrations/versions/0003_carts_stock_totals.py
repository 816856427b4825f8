"""Carts, stock and its reservations, order lines, order numbers and Stripe's totals.

Revision ID: 0003
Revises: 0002

Products gain an optional stock count (NULL: unlimited), the units held by
open checkouts (``reserved``, kept equal to the active reservations) and a
kind (physical goods need an address and shipping). Orders gain a short
public number and what Stripe says was paid. Carts live on the server, keyed
by a random cookie. Only nullable or defaulted columns are added to old tables.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ORDER_COLUMNS = [
    "ALTER TABLE orders ADD COLUMN order_number TEXT",
    "ALTER TABLE orders ADD COLUMN amount_subtotal INTEGER",
    "ALTER TABLE orders ADD COLUMN amount_discount INTEGER",
    "ALTER TABLE orders ADD COLUMN amount_shipping INTEGER",
    "ALTER TABLE orders ADD COLUMN amount_tax INTEGER",
    "ALTER TABLE orders ADD COLUMN amount_paid INTEGER",
    "ALTER TABLE orders ADD COLUMN shipping_name TEXT",
    "ALTER TABLE orders ADD COLUMN shipping_address TEXT",
    "ALTER TABLE orders ADD COLUMN cart_id INTEGER",
    "CREATE UNIQUE INDEX orders_by_number ON orders (order_number)",
]

# One list of statements per backend; a backend missing here refuses to migrate.
STATEMENTS = {
    "sqlite": [
        "ALTER TABLE products ADD COLUMN stock INTEGER CHECK (stock >= 0)",
        "ALTER TABLE products ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0"
        " CHECK (reserved >= 0)",
        "ALTER TABLE products ADD COLUMN kind TEXT NOT NULL DEFAULT 'digital'"
        " CHECK (kind IN ('physical', 'digital'))",
        *_ORDER_COLUMNS,
        """CREATE TABLE order_lines (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    product_id      INTEGER NOT NULL REFERENCES products (id),
    name            TEXT    NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    unit_amount     INTEGER NOT NULL CHECK (unit_amount > 0),
    reservation     TEXT    NOT NULL DEFAULT 'none'
                    CHECK (reservation IN ('none', 'active', 'released', 'converted')),
    UNIQUE (order_id, product_id)
)""",
        "CREATE INDEX order_lines_active ON order_lines (order_id) WHERE reservation = 'active'",
        """CREATE TABLE carts (
    id         INTEGER PRIMARY KEY,
    token      TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
)""",
        "CREATE INDEX carts_by_age ON carts (updated_at)",
        """CREATE TABLE cart_items (
    cart_id    INTEGER NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    added_at   TEXT    NOT NULL,
    PRIMARY KEY (cart_id, product_id)
)""",
    ],
    "postgresql": [
        "ALTER TABLE products ADD COLUMN stock INTEGER CHECK (stock >= 0)",
        "ALTER TABLE products ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0"
        " CHECK (reserved >= 0)",
        "ALTER TABLE products ADD COLUMN kind TEXT NOT NULL DEFAULT 'digital'"
        " CHECK (kind IN ('physical', 'digital'))",
        *_ORDER_COLUMNS,
        """CREATE TABLE order_lines (
    id              BIGSERIAL PRIMARY KEY,
    order_id        BIGINT  NOT NULL REFERENCES orders (id),
    product_id      BIGINT  NOT NULL REFERENCES products (id),
    name            TEXT    NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    unit_amount     INTEGER NOT NULL CHECK (unit_amount > 0),
    reservation     TEXT    NOT NULL DEFAULT 'none'
                    CHECK (reservation IN ('none', 'active', 'released', 'converted')),
    UNIQUE (order_id, product_id)
)""",
        "CREATE INDEX order_lines_active ON order_lines (order_id) WHERE reservation = 'active'",
        """CREATE TABLE carts (
    id         BIGSERIAL PRIMARY KEY,
    token      TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
)""",
        "CREATE INDEX carts_by_age ON carts (updated_at)",
        """CREATE TABLE cart_items (
    cart_id    BIGINT  NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id BIGINT  NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    added_at   TEXT    NOT NULL,
    PRIMARY KEY (cart_id, product_id)
)""",
    ],
}


def upgrade() -> None:
    """Add the columns, tables and indexes."""
    dialect = op.get_bind().dialect.name
    if dialect not in STATEMENTS:
        raise NotImplementedError(f"no migration 0003 for {dialect} databases")
    for statement in STATEMENTS[dialect]:
        op.execute(statement)
