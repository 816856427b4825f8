"""The cart: add, change, remove and check out, as htmx fragments or plain forms."""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING

from quart import (
    Blueprint,
    Response,
    current_app,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)

from storefront.carts import Cart, LineRequest, OutOfStock, QuantityError, is_cart_token
from storefront.carts import parse_quantity as _parse_quantity
from storefront.checkout import (
    ATTEMPT,
    CheckoutOptions,
    image_url,
    open_session,
    send_to_payment,
    session_expires_at,
)
from storefront.errors import (
    BadQuantity,
    CartProblem,
    ProductNotFound,
    ProductUnavailable,
    SoldOut,
    TooManyCheckouts,
)
from storefront.payments import CheckoutLine, CheckoutRequest
from storefront.stock_live import card_sold_out, cart_sold_out
from storefront.store import Store

if TYPE_CHECKING:
    from storefront.catalog import Product

log = logging.getLogger(__name__)
bp = Blueprint("cart", __name__)

COOKIE = "cart"


def _token() -> str | None:
    # Anything that is not the shape of our tokens is no cart: never a query.
    value = request.cookies.get(COOKIE)
    return value if is_cart_token(value) else None


async def current_cart(db: Store) -> tuple[int | None, Cart]:
    """This shopper's cart id and cart (empty when the cookie names none)."""
    token = _token()
    found = await db.cart(token) if token else None
    return found if found is not None else (None, Cart())


async def cart_count(db: Store) -> int:
    """How many items this shopper's cart holds (for the header)."""
    return (await current_cart(db))[1].count


@bp.app_template_global()
async def shopper_cart_count() -> int | None:
    """The header's count on pages that do not pass one (None outside a request)."""
    if not has_request_context():
        return None
    return await cart_count(current_app.extensions["db"])


def _quantity(raw: str | None) -> int:
    try:
        return _parse_quantity(raw)
    except QuantityError as error:
        raise BadQuantity(str(error)) from None


async def _product(db: Store, slug: str) -> Product:
    product = await db.product_by_slug(slug)
    if product is None:
        raise ProductNotFound()
    if not product.active:
        raise ProductUnavailable()
    return product


def _with_cookie(response: Response, token: str) -> Response:
    settings = current_app.config["SETTINGS"]
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.cart_max_age,
        httponly=True,
        samesite="Lax",
        secure=settings.base_url.startswith("https://"),
        path="/",
    )
    return response


def _htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


async def _cart_fragment(db: Store, notice: str | None = None) -> Response:
    _, cart = await current_cart(db)
    body = await render_template(
        "partials/cart_body.html", cart=cart, notice=notice, attempt=secrets.token_urlsafe(16)
    )
    body += await render_template("partials/cart_badge.html", cart_count=cart.count, oob=True)
    return Response(body, content_type="text/html; charset=utf-8")


@bp.get("/cart")
async def show() -> str:
    """The cart page: lines with their totals, the subtotal and the checkout button."""
    _, cart = await current_cart(current_app.extensions["db"])
    return await render_template(
        "cart.html", cart=cart, cart_count=cart.count, attempt=secrets.token_urlsafe(16)
    )


@bp.post("/cart/add/<slug>")
async def add(slug: str) -> Response:
    """Put units of a product in the cart (making the cart if there is none)."""
    db = current_app.extensions["db"]
    form = await request.form
    quantity = _quantity(form.get("quantity", "1"))
    product = await _product(db, slug)
    if product.sold_out:
        # A page opened before the last one went: say so, and show the card sold out.
        error = SoldOut(((product.name, 0),))
        error.message = f"Sorry, {product.name} is sold out, so nothing was added to your cart."
        if _htmx():
            return await card_sold_out(db, slug, error)
        raise error
    try:
        token = await db.add_to_cart(_token(), product.id, quantity)
    except QuantityError as error:
        raise BadQuantity(str(error)) from None
    if _htmx():
        _, cart = await db.cart(token) or (None, Cart())
        body = await render_template("partials/added.html", quantity=quantity)
        body += await render_template("partials/cart_badge.html", cart_count=cart.count, oob=True)
        return _with_cookie(Response(body, content_type="text/html; charset=utf-8"), token)
    return _with_cookie(redirect(url_for("cart.show"), 303), token)


@bp.post("/cart/items/<slug>")
async def change(slug: str) -> Response:
    """Set a line's quantity."""
    db = current_app.extensions["db"]
    form = await request.form
    quantity = _quantity(form.get("quantity"))
    token = _token()
    product = await db.product_by_slug(slug)
    if (
        token is None
        or product is None
        or not await db.set_cart_quantity(token, product.id, quantity)
    ):
        raise CartProblem("That product is not in your cart any more.")
    return await _cart_fragment(db) if _htmx() else redirect(url_for("cart.show"), 303)


@bp.post("/cart/items/<slug>/remove")
async def remove(slug: str) -> Response:
    """Take a product out of the cart."""
    db = current_app.extensions["db"]
    token = _token()
    product = await db.product_by_slug(slug)
    if token is not None and product is not None:
        await db.remove_from_cart(token, product.id)
    return await _cart_fragment(db) if _htmx() else redirect(url_for("cart.show"), 303)


@bp.post("/cart/checkout")
async def checkout() -> Response:
    """Open one Checkout Session for the whole cart, reserving its stock."""
    limiter = current_app.extensions["checkout_limiter"]
    client = limiter.client(request.remote_addr, request.headers.get("X-Forwarded-For"))
    if (wait := limiter.hit(client)) is not None:
        raise TooManyCheckouts(wait)
    form = await request.form
    attempt = form.get("attempt")
    db = current_app.extensions["db"]
    cart_id, cart = await current_cart(db)
    try:
        url = await start_cart_checkout(
            db, cart_id, cart, attempt if attempt and ATTEMPT.match(attempt) else None
        )
    except SoldOut as error:
        if not _htmx():
            raise
        # The lines that ran out say so, and the button waits for a smaller quantity.
        return await cart_sold_out(db, error)
    return send_to_payment(url)


async def start_cart_checkout(
    db: Store, cart_id: int | None, cart: Cart, attempt: str | None
) -> str:
    """Reserve the cart's stock in one order and open its session; the payment page URL."""
    settings = current_app.config["SETTINGS"]
    if cart_id is None or not cart.lines:
        raise CartProblem("Your cart is empty.")
    if cart.dropped:
        raise CartProblem(
            "Some products are no longer sold and were taken out of your cart: "
            + ", ".join(cart.dropped)
            + ". Please check your cart again."
        )
    currency = cart.currency
    if currency is None:
        raise CartProblem(
            "Your cart mixes prices in different currencies, which one payment cannot take. "
            "Please check out the products of each currency separately."
        )
    # Prices come from the database now: the cart page showed these very prices.
    lines = [LineRequest(x.product_id, x.name, x.quantity, x.unit_amount) for x in cart.lines]
    try:
        order = await db.open_lines_order(
            lines,
            currency,
            attempt,
            expires_at=session_expires_at(time.time(), settings.checkout_expires_after),
            cart_id=cart_id,
        )
    except OutOfStock as short:
        raise SoldOut(short.short) from None
    base = settings.base_url
    checkout_request = CheckoutRequest(
        order_token=order.token,
        product_name=cart.lines[0].name,
        product_description="",
        unit_amount=cart.lines[0].unit_amount,
        currency=currency,
        quantity=order.quantity,
        success_url=f"{base}/orders/{order.token}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base}/orders/{order.token}/cancelled",
        idempotency_key=f"storefront-checkout-{order.token}",
        allowed_payment_method_types=settings.allowed_payment_methods,
        expires_at=order.expires_at,
        lines=tuple(
            CheckoutLine(
                x.name, x.description, x.unit_amount, x.quantity, image_url(base, x.image)
            )
            for x in cart.lines
        ),
        **CheckoutOptions.from_settings(settings).request_fields(cart.physical),
    )
    return await open_session(db, current_app.extensions["payments"], order, checkout_request)
