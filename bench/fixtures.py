"""Databases, orders and signed webhook events prepared before a load run."""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import stripe

from bench.procs import OUT, run, tool

WEBHOOK_SECRET = "whsec_" + secrets.token_hex(24)
PRODUCTS = Path("data") / "products.toml"


def fresh_database(name: str) -> Path:
    """A new SQLite file with the schema and the sample products, via the shop's own CLI."""
    path = OUT / "db" / f"{name}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    run([tool("storefront"), "import-products", str(PRODUCTS)], {"STOREFRONT_DATABASE": str(path)})
    return path


def copy_database(source: Path, name: str) -> Path:
    """A copy of a prepared (checkpointed, closed) database under another name."""
    target = source.with_name(f"{name}.sqlite3")
    shutil.copyfile(source, target)
    return target


@dataclass(frozen=True)
class PendingOrder:
    """An order waiting for its checkout.session.completed event."""

    token: str
    session_id: str


def new_pending_orders(count: int, tag: str) -> list[PendingOrder]:
    """Tokens and session ids for ``count`` orders of one tag (not stored yet)."""
    return [
        PendingOrder(secrets.token_urlsafe(24), f"cs_bench_{tag}_{i:06d}") for i in range(count)
    ]


def add_pending_orders(path: Path, count: int, tag: str) -> list[PendingOrder]:
    """Insert ``count`` pending orders with session ids, as checkout would have left them."""
    orders = new_pending_orders(count, tag)
    conn = sqlite3.connect(path)
    try:
        product_id, amount, currency = conn.execute(
            "SELECT id, unit_amount, currency FROM products ORDER BY id LIMIT 1"
        ).fetchone()
        with conn:
            conn.executemany(
                "INSERT INTO orders (token, product_id, amount_total, currency,"
                " stripe_session_id) VALUES (?, ?, ?, ?, ?)",
                [(o.token, product_id, amount, currency, o.session_id) for o in orders],
            )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return orders


def completed_event(order: PendingOrder, event_id: str) -> str:
    """The JSON body of a paid checkout.session.completed event for ``order``."""
    session = {
        "id": order.session_id,
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "mode": "payment",
        "client_reference_id": order.token,
        "payment_intent": "pi_" + order.session_id[3:],
        "customer_details": {"email": "shopper@example.com"},
        "amount_subtotal": 1800,
        "amount_total": 1800,
        # Stripe always sends these; without them the shop would ask Stripe for
        # the line items of every delivery (bench/README.md, findings).
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "currency": "eur",
    }
    event = {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "api_version": "2025-01-01",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": session},
    }
    return json.dumps(event, separators=(",", ":"))


def signed(body: str, secret: str = WEBHOOK_SECRET) -> str:
    """A Stripe-Signature header for ``body``, signed now, as Stripe would send it."""
    return stripe.WebhookSignature.generate_signature_header(body, secret)


def write_events(orders: list[PendingOrder], tag: str) -> Path:
    """Sign one distinct event per order into a file the wrk script reads."""
    path = OUT / f"events-{tag}.tsv"
    with path.open("w", encoding="utf-8") as out:
        for i, order in enumerate(orders):
            body = completed_event(order, f"evt_bench_{tag}_{i:06d}")
            out.write(f"{signed(body)}\t{body}\n")
    return path


def write_paths(paths: list[str], tag: str) -> Path:
    """One URL path per line, for the wrk scripts that cycle through URLs."""
    path = OUT / f"paths-{tag}.txt"
    path.write_text("".join(p + "\n" for p in paths), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Ingested:
    """What a webhook run left in the database, for the orders of one tag."""

    events: int
    paid: int


def count_ingested(path: Path, tag: str) -> Ingested:
    """Count committed webhook_events rows and paid orders of one run."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        # One statement, one snapshot: a commit between two counts would look like a
        # paid order without its event.
        events, paid = conn.execute(
            "SELECT (SELECT count(*) FROM webhook_events WHERE id LIKE ?),"
            " (SELECT count(*) FROM orders WHERE stripe_session_id LIKE ? AND status = 'paid')",
            (f"evt_bench_{tag}_%", f"cs_bench_{tag}_%"),
        ).fetchone()
    finally:
        conn.close()
    return Ingested(int(events), int(paid))
