"""The back office's pages: sign-in, orders, refunds, fulfilment, the webhook log."""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
import time
from typing import Any

from quart import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound

from storefront import fulfilment
from storefront.admin import auth
from storefront.admin.auth import staff, store
from storefront.money import parse_price
from storefront.orders import Fulfilment, Order, OrderStatus
from storefront.payments import PaymentError, PaymentGateway
from storefront.store.backoffice import OrderQuery
from storefront.webhooks import lines_due

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")

PUBLIC = frozenset({"admin.login"})
_ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_EVENT_ID = re.compile(r"^evt_[A-Za-z0-9]{1,64}$")
STATUS_FILTERS = ("", *[s.value for s in OrderStatus], "partially_refunded", "flagged")
LOOKBACK = 30 * 24 * 60 * 60  # Stripe lists undelivered events for 30 days


def payments() -> PaymentGateway:
    """The app's payment gateway."""
    return current_app.extensions["payments"]


@bp.before_request
async def guard() -> Response | None:
    """Anonymous requests go to sign-in; every form must carry the session's CSRF token."""
    g.staff = await auth.load_staff()
    # Reads are refused from other sites too (the cookie is SameSite=Strict anyway):
    # no other site may frame, prefetch or probe a back-office page.
    cross_site = request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site")
    if cross_site and not (request.endpoint in PUBLIC and request.method == "GET"):
        return Response("Refused: back-office pages open only from the back office.", 403)
    if request.endpoint in PUBLIC:
        return None
    if g.staff is None:
        return auth.to_login()
    if request.method not in ("GET", "HEAD"):
        form = await request.form
        if not auth.csrf_ok(g.staff.csrf_token, form.get("csrf_token")):
            return Response("Refused: the form's token is missing or stale.", status=403)
    return None


@bp.after_request
async def never_cache(response: Response) -> Response:
    """Back-office pages hold customers' data: no cache keeps them."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.app_context_processor
async def _csrf() -> dict[str, Any]:
    staff_session = getattr(g, "staff", None)
    return {"csrf_token": staff_session.csrf_token if staff_session else ""}


# Sign-in.


@bp.route("/login", methods=["GET", "POST"])
async def login() -> Any:
    """The sign-in form; one message for every failure."""
    if request.method == "GET":
        return await _login_page(None, 200)
    form = await request.form
    email = str(form.get("email", "")).strip()[:200]
    password = str(form.get("password", ""))[:1000]
    cookie_token = request.cookies.get(auth.LOGIN_CSRF_COOKIE, "")
    if not auth.csrf_ok(cookie_token, form.get("csrf_token")):
        return await _login_page("Please sign in again.", 403)
    address = current_app.extensions["checkout_limiter"].client(
        request.remote_addr, request.headers.get("X-Forwarded-For")
    )
    throttle = auth.auth().throttle
    wait = throttle.wait(address, email)
    if wait is not None:
        response = await _login_page(f"Too many attempts. Try again in {wait} s.", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    account = await store().staff_by_email(email) if email else None
    if not auth.auth().passwords.verify(account[1] if account else None, password):
        throttle.failed(address, email)
        log.warning("back office: failed sign-in from %s", address)
        return await _login_page("Wrong email or password.", 401)
    assert account is not None
    response = redirect(url_for("admin.orders"), 303)
    await auth.sign_in(response, account[0])
    log.info("back office: staff %s signed in", account[0])
    return response


async def _login_page(error: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    body = await render_template("admin/login.html", error=error, login_token=token)
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.set_cookie(
        auth.LOGIN_CSRF_COOKIE,
        token,
        path="/admin",
        secure=auth.auth().secure,
        httponly=True,
        samesite="Strict",
    )
    return response


@bp.post("/logout")
async def logout() -> Response:
    """End the session."""
    response = redirect(url_for("admin.login"), 303)
    await auth.sign_out(response)
    return response


# Orders.


def _query() -> OrderQuery:
    status = request.args.get("status", "")
    page = request.args.get("page", "1")
    return OrderQuery(
        status=status if status in STATUS_FILTERS else "",
        search=request.args.get("q", "")[:200],
        page=int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
    )


@bp.get("/")
async def orders() -> str:
    """The order list; htmx polls its table to keep it live."""
    query = _query()
    found, total = await store().list_orders(query)
    context = {
        "orders": found,
        "total": total,
        "query": query,
        "filters": STATUS_FILTERS,
        "pages": max(1, -(-total // query.per_page)),
    }
    if request.headers.get("HX-Request") == "true":
        return await render_template("admin/partials/orders_table.html", **context)
    return await render_template("admin/orders.html", **context)


@bp.get("/orders.csv")
async def orders_csv() -> Response:
    """The filtered list (every page) as CSV."""
    base = _query()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "id",
            "order_number",
            "created_at",
            "status",
            "fulfilment",
            "email",
            "product",
            "quantity",
            "amount_total",
            "amount_paid",
            "amount_refunded",
            "currency",
            "payment_intent",
            "ship_to",
            "flag",
        ]
    )
    page = 1
    while True:
        found, _ = await store().list_orders(OrderQuery(base.status, base.search, page, 500))
        for o in found:
            writer.writerow(
                [
                    o.id,
                    o.order_number or "",
                    o.created_at,
                    o.status.value,
                    o.fulfilment.value,
                    _cell(o.customer_email),
                    _cell(o.product_name),
                    o.quantity,
                    o.amount_total,
                    "" if o.amount_paid is None else o.amount_paid,
                    o.amount_refunded,
                    o.currency,
                    o.payment_intent or "",
                    _cell(_ship_to(o)),
                    _cell(o.flag_reason),
                ]
            )
        if len(found) < 500:
            break
        page += 1
    return Response(
        out.getvalue(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="orders.csv"'},
    )


def _ship_to(order: Order) -> str | None:
    # The name and the address's parts on one line, as a label would show them.
    parts = [order.shipping_name, *(order.shipping_address or {}).values()]
    return ", ".join(str(p) for p in parts if p) or None


def _cell(value: str | None) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet: neutralise it.
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def _order(order_id: int) -> Order:
    order = await store().order_by_id(order_id)
    if order is None:
        raise NotFound()
    return order


@bp.get("/orders/<int:order_id>")
async def order_page(order_id: int) -> str:
    """One order: items, totals, Stripe ids, timeline, webhook events, disputes, flags."""
    return await _render_order(await _order(order_id), None)


async def _render_order(order: Order, message: str | None, status: int = 200) -> Any:
    timeline, events, disputes = await store().order_history(order.id)
    body = await render_template(
        "admin/order.html",
        order=order,
        lines=await store().order_lines(order.id),
        ship_to=_ship_to(order),
        timeline=timeline,
        events=events,
        disputes=disputes,
        message=message,
        attempt=secrets.token_urlsafe(16),
        Fulfilment=Fulfilment,
    )
    return Response(body, status=status, content_type="text/html; charset=utf-8")


@bp.post("/orders/<int:order_id>/refund")
async def refund(order_id: int) -> Any:
    """Ask Stripe to refund all or part; the order follows when charge.refunded arrives."""
    order = await _order(order_id)
    form = await request.form
    attempt = str(form.get("attempt", ""))
    if order.refundable <= 0 or not order.payment_intent:
        return await _render_order(order, "This order has nothing left to refund.", 409)
    raw = str(form.get("amount", "")).strip()
    try:
        amount = parse_price(raw, order.currency) if raw else order.refundable
    except ValueError as error:
        return await _render_order(order, f"Refund refused: {error}.", 400)
    if amount > order.refundable or not _ATTEMPT.match(attempt):
        return await _render_order(order, "Refund refused: at most what is left to refund.", 400)
    key = f"storefront-refund-{order.token}-{attempt}"
    try:
        done = await payments().create_refund(order.payment_intent, amount, key)
    except PaymentError as error:
        log.warning("order_id=%s: refund refused by Stripe: %s", order.id, error)
        return await _render_order(order, "Stripe refused the refund; nothing was refunded.", 502)
    log.info(
        "order_id=%s: refund %s of %s requested by staff %s",
        order.id,
        done.id,
        amount,
        staff().user_id,
    )
    return redirect(url_for("admin.order_page", order_id=order.id, refund=done.id), 303)


@bp.post("/orders/<int:order_id>/fulfil")
async def fulfil(order_id: int) -> Any:
    """Mark a paid order shipped (emails the shopper) or delivered."""
    order = await _order(order_id)
    form = await request.form
    action = str(form.get("action", ""))
    note = str(form.get("note", "")).strip()[:300] or None
    if action not in (Fulfilment.SHIPPED, Fulfilment.DELIVERED):
        return await _render_order(order, "Choose shipped or delivered.", 400)
    if note is not None and "\x00" in note:
        return await _render_order(order, "The note holds a NUL character: remove it.", 400)
    if not await store().set_fulfilment(order.id, Fulfilment(action), note):
        return await _render_order(order, "Only a paid, unfulfilled order can be fulfilled.", 409)
    return redirect(url_for("admin.order_page", order_id=order.id), 303)


@bp.post("/orders/<int:order_id>/check")
async def check(order_id: int) -> Any:
    """Ask Stripe about this order now (the reconciler's step for one order)."""
    order = await _order(order_id)
    await fulfilment.sync_order(store(), payments(), order, source="back office")
    return redirect(url_for("admin.order_page", order_id=order.id), 303)


# The webhook log.


@bp.get("/webhooks")
async def webhooks() -> str:
    """Every event received, and the events Stripe could not deliver."""
    received = await store().webhook_log(200)
    undelivered, error = [], None
    try:
        undelivered = await payments().undelivered_events(int(time.time()) - LOOKBACK)
    except PaymentError as failure:
        log.warning("back office: could not list undelivered events: %s", failure)
        error = "Stripe could not be asked for undelivered events just now."
    known = await store().known_event_ids([u.event.id for u in undelivered])
    return await render_template(
        "admin/webhooks.html",
        received=received,
        undelivered=undelivered,
        known=known,
        error=error,
    )


@bp.post("/webhooks/<event_id>/apply")
async def apply_undelivered(event_id: str) -> Any:
    """Fetch an undelivered event from Stripe and apply it as the webhook would."""
    if not _EVENT_ID.match(event_id):
        raise NotFound()
    try:
        event = await payments().retrieve_event(event_id)
        result = await fulfilment.apply_event(
            store(), event, payments(), lines_due=lines_due(current_app.extensions)
        )
    except PaymentError as error:
        log.warning("back office: event %s could not be applied: %s", event_id, error)
        return Response("Stripe could not be reached; nothing was applied.", status=502)
    log.info("back office: event %s applied by hand: %s", event_id, result)
    return redirect(url_for("admin.webhooks", applied=event_id, result=result.value), 303)


# Registered on ``bp`` by importing them.
from storefront.admin import products as _products  # noqa: E402, F401
