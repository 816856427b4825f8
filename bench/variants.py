"""Variants of the unchanged shop, to measure choices before recommending them.

Each factory builds the shop with ``create_app()`` and swaps one piece from the
outside; none of this ships. The winners are written up in RESULTS.md for the
shop's own code.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Any

import stripe
from quart import Quart, render_template

import storefront.catalog
import storefront.webhooks
from storefront import create_app, orders
from storefront.catalog import Product
from storefront.db import Database
from storefront.fulfilment import EventResult
from storefront.payments import StripePayments, WebhookEvent

_active_products = storefront.catalog.active_products


def cached_catalog() -> Quart:
    """The shop with the product list cached for a second instead of queried per page."""
    cache: dict[str, Any] = {"at": float("-inf"), "products": []}

    async def active_products(db: Database) -> list[Product]:
        now = time.monotonic()
        if now - cache["at"] > 1.0:
            cache["products"] = await _active_products(db)
            cache["at"] = now
        return list(cache["products"])

    storefront.catalog.active_products = active_products  # type: ignore[assignment]
    return create_app()


def httpx_client() -> Quart:
    """The shop with the SDK's httpx client instead of aiohttp."""
    app = create_app()
    gateway = app.extensions["payments"]
    assert isinstance(gateway, StripePayments)

    async def open_httpx() -> None:
        # Same construction as StripePayments.open, with the other async client.
        gateway._http = stripe.HTTPXClient(timeout=30)  # type: ignore[assignment]
        gateway._client = stripe.StripeClient(
            gateway._secret_key,
            base_addresses={"api": gateway._api_base} if gateway._api_base else None,
            http_client=gateway._http,
            max_network_retries=gateway._max_network_retries,
        )

    gateway.open = open_httpx  # type: ignore[method-assign]
    return app


def one_connection() -> Quart:
    """The shop reading through its writer connection (one connection, one thread)."""
    app = create_app()
    db = app.extensions["db"]
    original_open = db.open

    async def open_one() -> None:
        await original_open()
        await db._reader.close()
        db._reader = db._writer

    db.open = open_one  # type: ignore[method-assign]
    return app


def cached_page() -> Quart:
    """The shop serving its catalog from a rendered page refreshed each second.

    Only the Buy forms' attempt nonces differ between two shoppers, so the page
    is rendered with markers in their place and each request splices fresh ones in.
    """
    app = create_app()
    db = app.extensions["db"]
    state: dict[str, Any] = {"at": float("-inf"), "parts": [""]}

    async def index() -> str:
        now = time.monotonic()
        if now - state["at"] > 1.0:
            products = await storefront.catalog.active_products(db)
            marker = "\x00attempt\x00"
            html = await render_template(
                "catalog.html", products=products, attempts={p.slug: marker for p in products}
            )
            state["parts"], state["at"] = html.split(marker), now
        parts = state["parts"]
        out = [parts[0]]
        for part in parts[1:]:
            out += [secrets.token_urlsafe(16), part]
        return "".join(out)

    app.view_functions["catalog.index"] = index
    return app


def one_hop_webhooks() -> Quart:
    """The shop applying each webhook's whole transaction in one trip to the SQLite thread.

    The shop's transaction makes six awaited aiosqlite calls while holding the
    write lock, each a hop to the database thread and back; this runs the same
    statements as one plain-sqlite3 function on that thread instead.
    """
    app = create_app()
    db = app.extensions["db"]

    def apply_sync(conn: sqlite3.Connection, event: WebhookEvent) -> EventResult:
        outcome = orders.outcome_from_event(event.type, event.object)
        conn.execute("BEGIN IMMEDIATE")
        try:
            fresh = conn.execute(
                "INSERT OR IGNORE INTO webhook_events (id, type) VALUES (?, ?)",
                (event.id, event.type),
            ).rowcount
            result = EventResult.DUPLICATE if not fresh else EventResult.IGNORED
            if fresh and outcome is not None:
                row = conn.execute(
                    "SELECT id FROM orders WHERE stripe_session_id = ?", (outcome.session_id,)
                ).fetchone()
                if row is not None:
                    allowed = sorted(orders.PREDECESSORS[outcome.status])
                    marks = ",".join("?" for _ in allowed)
                    moved = conn.execute(
                        "UPDATE orders SET status = ?, payment_intent = coalesce(?,"
                        " payment_intent), customer_email = coalesce(?, customer_email),"
                        " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                        f" WHERE id = ? AND status IN ({marks})",
                        (outcome.status.value, outcome.payment_intent, outcome.customer_email,
                         row[0], *allowed),
                    ).rowcount  # fmt: skip
                    if moved:
                        conn.execute(
                            "INSERT OR IGNORE INTO order_events (order_id, status, source,"
                            " stripe_event_id) VALUES (?, ?, 'webhook', ?)",
                            (row[0], outcome.status.value, event.id),
                        )
                    result = EventResult.APPLIED if moved else EventResult.UNCHANGED
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def apply_event(_: Database, event: WebhookEvent, *__: object) -> EventResult:
        async with db._write_lock:
            # aiosqlite's private hook: run a function on its own database thread.
            return await db._writer._execute(apply_sync, db._writer._conn, event)

    storefront.webhooks.apply_event = apply_event  # type: ignore[assignment]
    return app
