"""The money invariant: every payment Stripe took shows on an order, and only those.

Checked at the end of every reliability run that pays through a sandbox:

- for every session whose ``payment_status`` is ``paid``, its order is paid,
  refunded, or flagged for the shopkeeper;
- no order is paid (or refunded) without a paid session behind it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SETTLED = ("paid", "refunded")


def sandbox_sessions(state: Any) -> list[Mapping[str, Any]]:
    """Every Checkout Session the sandbox holds, as Stripe's JSON shape.

    The one place tests read the sandbox's session records: when their shape
    changes, only this function follows.
    """
    return [record.to_stripe() for record in state.sessions.values()]


@dataclass
class MoneyCheck:
    """The invariant's counts, and what broke it."""

    paid_sessions: int = 0
    paid_orders: int = 0
    refunded_orders: int = 0
    flagged_orders: int = 0
    violations: list[str] = field(default_factory=list)

    def figures(self) -> str:
        """One line for a test's figures block."""
        return (
            f"money invariant: {self.paid_sessions} paid sessions; orders "
            f"{self.paid_orders} paid, {self.refunded_orders} refunded, "
            f"{self.flagged_orders} flagged; violations {len(self.violations)}"
        )


def check_money(
    orders: Iterable[Mapping[str, Any]], sessions: Iterable[Mapping[str, Any]]
) -> MoneyCheck:
    """Hold our orders against Stripe's sessions (both as plain rows)."""
    orders = list(orders)
    by_token = {o["token"]: o for o in orders}
    by_session = {o["stripe_session_id"]: o for o in orders if o["stripe_session_id"]}
    paid = {s["id"]: s for s in sessions if s.get("payment_status") == "paid"}
    check = MoneyCheck(paid_sessions=len(paid))
    for order in orders:
        check.paid_orders += order["status"] == "paid"
        check.refunded_orders += order["status"] == "refunded"
        check.flagged_orders += order["flagged_at"] is not None
    for session in paid.values():
        order = by_session.get(session["id"]) or by_token.get(session.get("client_reference_id"))
        if order is None:
            check.violations.append(f"session {session['id']} is paid but has no order")
        elif order["status"] not in SETTLED and order["flagged_at"] is None:
            check.violations.append(
                f"session {session['id']} is paid but order {order['id']} is "
                f"{order['status']} and not flagged"
            )
        elif (
            order.get("amount_paid") is not None
            and order["flagged_at"] is None
            and (order["amount_paid"] != session.get("amount_total"))
        ):
            # A cart's total is decided on Stripe's page: the order must record it.
            check.violations.append(
                f"order {order['id']} records {order['amount_paid']} paid, but session "
                f"{session['id']} charged {session.get('amount_total')}"
            )
    for order in orders:
        if order["status"] in SETTLED and order["stripe_session_id"] not in paid:
            check.violations.append(
                f"order {order['id']} is {order['status']} without a paid session"
            )
    return check


def read_orders(database: Path | str) -> list[dict[str, Any]]:
    """Every order row, read-only, whether or not the shop still runs.

    ``database`` is a SQLite file or a ``postgresql://`` URL.
    """
    if str(database).startswith("postgresql://"):
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(str(database), row_factory=dict_row) as pg:
            return list(pg.execute("SELECT * FROM orders ORDER BY id"))
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM orders ORDER BY id")]
    finally:
        conn.close()


def assert_money_invariant(database: Path | str, sandbox_state: Any) -> MoneyCheck:
    """Check the invariant on a shop's database and its sandbox; fail with every violation."""
    check = check_money(read_orders(database), sandbox_sessions(sandbox_state))
    assert not check.violations, "money invariant broken:\n" + "\n".join(check.violations)
    return check
