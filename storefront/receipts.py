"""The receipt page, its live status fragment, and the cancel page."""

from __future__ import annotations

from quart import Blueprint, current_app, render_template, request

from storefront import orders
from storefront.errors import OrderNotFound
from storefront.fulfilment import cancel_order, sync_order
from storefront.orders import Order

bp = Blueprint("receipts", __name__)


async def _order(token: str) -> Order:
    # Tokens are long random strings; anything else cannot be an order.
    order = await orders.get_by_token(current_app.extensions["db"], token) if token else None
    if order is None:
        raise OrderNotFound()
    return order


@bp.get("/orders/<token>")
async def receipt(token: str) -> str:
    """The receipt; back from Stripe it asks Stripe itself how the payment went."""
    order = await _order(token)
    session_id = request.args.get("session_id")
    if session_id and session_id == order.stripe_session_id:
        # Never trust the query string: it only prompts us to ask Stripe.
        order = await sync_order(
            current_app.extensions["db"],
            current_app.extensions["payments"],
            order,
            source="success page",
        )
    return await render_template("receipt.html", **await _status_context(order))


@bp.get("/orders/<token>/status")
async def status(token: str) -> str:
    """The status fragment; it polls itself until the order is final."""
    order = await _order(token)
    return await render_template("partials/order_status.html", **await _status_context(order))


@bp.get("/orders/<token>/cancelled")
async def cancelled(token: str) -> str:
    """The shopper came back without paying: expire the session so it can't be paid."""
    order = await _order(token)
    order = await cancel_order(
        current_app.extensions["db"], current_app.extensions["payments"], order
    )
    return await render_template("cancelled.html", **await _status_context(order))


async def _status_context(order: Order) -> dict[str, object]:
    return {
        "order": order,
        "timeline": await orders.timeline(current_app.extensions["db"], order.id),
    }
