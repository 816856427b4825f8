"""The tutorial's approach, reproduced: a synchronous Flask app with the synchronous Stripe SDK.

It serves the same catalog page (the shop's own templates), creates Checkout
Sessions with the blocking SDK, and verifies webhooks with ``construct_event``,
as Stripe's Flask quick-start does. Orders live in the same SQLite schema, with
one connection per request as Flask's tutorial opens them, and the same PRAGMAs
the shop uses, so the comparison is about the serving model, not the database.

Run: ``gunicorn 'bench.baseline.flask_app:create_app()'`` with the shop's environment.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from enum import StrEnum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import stripe
from flask import Blueprint, Flask, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}

catalog = Blueprint("catalog", __name__)
checkout = Blueprint("checkout", __name__)
receipts = Blueprint("receipts", __name__)
webhooks = Blueprint("webhooks", __name__)
# The tutorial has no cart and no live stock; the shop's shared templates link to
# both, so their URLs exist here and answer 404.
cart = Blueprint("cart", __name__)
stock_live = Blueprint("stock_live", __name__)
for _blueprint, _rule, _endpoint in (
    (cart, "/cart", "show"),
    (cart, "/cart/add/<slug>", "add"),
    (cart, "/cart/items/<slug>", "change"),
    (cart, "/cart/items/<slug>/remove", "remove"),
    (cart, "/cart/checkout", "checkout"),
    (stock_live, "/stock/catalog", "catalog"),
    (stock_live, "/stock/cart", "cart"),
):
    _blueprint.add_url_rule(_rule, _endpoint, lambda **_: Response("not here", status=404))
# The shop's cards show "Only N left" from here down (storefront.stock_live).
LOW_STOCK = 5
# The tutorial's page polls its status every 2 s until the order is final.
POLL_EVERY = 2


class Fulfilment(StrEnum):
    """Whether the goods went out, as the shop's status fragment reads it."""

    UNFULFILLED = "unfulfilled"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class Status(StrEnum):
    """Order statuses, with the one property the shop's templates read."""

    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    ABORTED = "aborted"

    @property
    def is_final(self) -> bool:
        """True once nothing more is expected."""
        return self not in (Status.PENDING, Status.PROCESSING)


def money(amount: int, currency: str) -> str:
    """Format minor units the way the shop's templates expect."""
    symbol = SYMBOLS.get(currency.lower())
    number = f"{amount / 100:,.2f}"
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def when(value: str) -> str:
    """Show a stored UTC timestamp briefly."""
    date, _, time = value.partition("T")
    return f"{date} {time[:5]} UTC"


def catalog_levels(products: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    """The stock the catalog's cards show, as the shop's stock poller names it."""
    cap = LOW_STOCK + 1
    return [
        (p["id"], cap if p["available"] is None else min(p["available"], cap), cap)
        for p in products
        if p["stock"] is not None
    ]


def stock_version(levels: list[tuple[int, int, int]]) -> str:
    """The poller's ``v``: product, level shown and cap, as the shop spells it."""
    return "-".join(f"{product}.{level}.{cap}" for product, level, cap in levels)


def db() -> sqlite3.Connection:
    """One connection per request, closed at teardown (Flask's tutorial pattern)."""
    if "db" not in g:
        conn = sqlite3.connect(os.environ["STOREFRONT_DATABASE"], isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 5000")
        g.db = conn
    return g.db


def _with_stock(product: dict[str, Any]) -> dict[str, Any]:
    """The two stock figures the shop's product card shows."""
    stock = product.get("stock")
    available = None if stock is None else max(stock - product.get("reserved", 0), 0)
    return product | {"available": available, "sold_out": available == 0}


@catalog.get("/")
def index() -> str:
    """The catalog: the shop's template over the same query."""
    rows = db().execute("SELECT * FROM products WHERE active = 1 ORDER BY id").fetchall()
    products = [_with_stock(dict(row)) for row in rows]
    attempts = {p["slug"]: secrets.token_urlsafe(16) for p in products}
    return render_template("catalog.html", products=products, attempts=attempts)


@checkout.post("/checkout/<slug>", endpoint="checkout")
def create_checkout(slug: str) -> Response:
    """Insert a pending order, create its session with the blocking SDK, redirect."""
    conn = db()
    product = conn.execute("SELECT * FROM products WHERE slug = ?", (slug,)).fetchone()
    if product is None:
        return Response("not found", status=404)
    token = secrets.token_urlsafe(24)
    base = os.environ["STOREFRONT_BASE_URL"]
    conn.execute("BEGIN IMMEDIATE")
    order_id = conn.execute(
        "INSERT INTO orders (token, product_id, amount_total, currency) VALUES (?, ?, ?, ?)",
        (token, product["id"], product["unit_amount"], product["currency"]),
    ).lastrowid
    conn.execute(
        "INSERT INTO order_events (order_id, status, source) VALUES (?, 'pending', 'checkout')",
        (order_id,),
    )
    conn.execute("COMMIT")
    session = stripe.checkout.Session.create(
        mode="payment",
        line_items=[
            {
                "price_data": {
                    "currency": product["currency"],
                    "unit_amount": product["unit_amount"],
                    "product_data": {
                        "name": product["name"],
                        "description": product["description"],
                    },
                },
                "quantity": 1,
            }
        ],
        success_url=f"{base}/orders/{token}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base}/orders/{token}/cancelled",
        client_reference_id=token,
        metadata={"order_token": token},
        idempotency_key=f"baseline-checkout-{token}",
    )
    conn.execute("UPDATE orders SET stripe_session_id = ? WHERE id = ?", (session.id, order_id))
    return redirect(session.url, 303)


def _order(token: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    conn = db()
    row = conn.execute(
        "SELECT o.*, p.name AS product_name FROM orders o JOIN products p"
        " ON p.id = o.product_id WHERE o.token = ?",
        (token,),
    ).fetchone()
    if row is None:
        return None
    order = dict(row) | {"status": Status(row["status"])}
    events = conn.execute(
        "SELECT status, source, created_at FROM order_events WHERE order_id = ? ORDER BY id",
        (row["id"],),
    ).fetchall()
    timeline = [dict(e) | {"status": Status(e["status"])} for e in events]
    return order, timeline


@receipts.get("/orders/<token>")
def receipt(token: str) -> str | Response:
    """The receipt page with its polling status fragment."""
    found = _order(token)
    if found is None:
        return Response("not found", status=404)
    order, timeline = found
    return render_template(
        "receipt.html", order=order, timeline=timeline, lines=[], poll=_poll(order, token)
    )


@receipts.get("/orders/<token>/status")
def status(token: str) -> str | Response:
    """What receipt pages poll: the whole status fragment, every time (no versions)."""
    found = _order(token)
    if found is None:
        return Response("not found", status=404)
    order, timeline = found
    return render_template(
        "partials/order_update.html", order=order, timeline=timeline, poll=_poll(order, token)
    )


def _poll(order: dict[str, Any], token: str) -> SimpleNamespace:
    # The poller the shop's templates draw; this page names no version, so every
    # poll renders the status again.
    every = None if order["status"].is_final else POLL_EVERY
    return SimpleNamespace(token=token, version=None, every=every)


@webhooks.post("/webhook")
def webhook() -> tuple[dict[str, Any], int]:
    """Verify with construct_event, then dedupe and mark paid in one transaction."""
    payload = request.get_data()
    try:
        event = stripe.Webhook.construct_event(
            payload, request.headers.get("Stripe-Signature", ""), os.environ["WEBHOOK_SECRET"]
        )
    except (ValueError, stripe.SignatureVerificationError):
        return {"error": "invalid signature"}, 400
    conn = db()
    conn.execute("BEGIN IMMEDIATE")
    try:
        fresh = conn.execute(
            "INSERT OR IGNORE INTO webhook_events (id, type) VALUES (?, ?)",
            (event.id, event.type),
        ).rowcount
        if fresh and event.type == "checkout.session.completed":
            session_id = event.data.object.id
            row = conn.execute(
                "UPDATE orders SET status = 'paid' WHERE stripe_session_id = ?"
                " AND status IN ('pending', 'processing') RETURNING id",
                (session_id,),
            ).fetchone()
            if row is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO order_events (order_id, status, source,"
                    " stripe_event_id) VALUES (?, 'paid', 'webhook', ?)",
                    (row["id"], event.id),
                )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return {"received": True}, 200


def create_app() -> Flask:
    """Configure the global Stripe module the way the tutorial does, and the routes."""
    stripe.api_key = os.environ.get("STRIPE_SECRET_KEY") or "sk_test_sandbox"
    stripe.api_base = os.environ["STRIPE_API_BASE"]
    os.environ.setdefault("WEBHOOK_SECRET", os.environ.get("STRIPE_WEBHOOK_SECRET", ""))
    app = Flask(
        __name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static")
    )
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["when"] = when
    app.jinja_env.globals["sandbox_mode"] = True
    # The names the shop's templates use since they grew (the shop sets the same).
    app.jinja_env.globals["shop_name"] = "Storefront"
    app.jinja_env.globals["OrderStatus"] = Status
    app.jinja_env.globals["static_url"] = lambda filename: url_for("static", filename=filename)
    app.jinja_env.globals["Fulfilment"] = Fulfilment
    # The cart badge: the tutorial has no cart, so it always reads 0 (the shop's
    # count for a shopper without a cart cookie, as every bench request is).
    app.jinja_env.globals["shopper_cart_count"] = lambda: 0
    # The live stock poller, at the shop's default interval.
    poll_every = int(os.environ.get("STOREFRONT_STOCK_POLL_INTERVAL", "5"))
    app.jinja_env.globals["stock_poll_every"] = lambda: poll_every
    app.jinja_env.globals["catalog_levels"] = catalog_levels
    app.jinja_env.globals["stock_version"] = stock_version
    for blueprint in (catalog, checkout, receipts, webhooks, cart, stock_live):
        app.register_blueprint(blueprint)

    @app.teardown_appcontext
    def _close(_: BaseException | None) -> None:
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

    return app
