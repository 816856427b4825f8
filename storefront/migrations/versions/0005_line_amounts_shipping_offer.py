"""What each order line was paid, and the shipping amounts an order was offered.

Revision ID: 0005
Revises: 0004

Order lines gain Stripe's per-line discount, tax and total (from the session's
line items, recorded when the order is paid), and orders the shipping amounts
the shop offered for their session, so a paid shipping amount can be checked
against them. Orders from before this revision keep NULL there: what they were
offered is unknown, so their shipping is not checked; new orders default to
'' (no shipping offered) until checkout records the rates.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COMMON = [
    "ALTER TABLE order_lines ADD COLUMN amount_discount INTEGER",
    "ALTER TABLE order_lines ADD COLUMN amount_tax INTEGER",
    "ALTER TABLE order_lines ADD COLUMN amount_total INTEGER",
    "ALTER TABLE orders ADD COLUMN shipping_offered TEXT DEFAULT ''",
    # Existing orders were offered something we never wrote down: unknown, not "none".
    "UPDATE orders SET shipping_offered = NULL",
]

# One list of statements per backend; a backend missing here refuses to migrate.
STATEMENTS = {"sqlite": list(_COMMON), "postgresql": list(_COMMON)}


def upgrade() -> None:
    """Add the columns."""
    dialect = op.get_bind().dialect.name
    if dialect not in STATEMENTS:
        raise NotImplementedError(f"no migration 0005 for {dialect} databases")
    for statement in STATEMENTS[dialect]:
        op.execute(statement)
