"""POST /checkout/<product>: open an order and send the shopper to pay."""

from __future__ import annotations

import logging
import re

from quart import Blueprint, Response, current_app, redirect, request

from storefront import orders
from storefront.catalog import product_by_slug
from storefront.db import Database
from storefront.errors import (
    CheckoutUnavailable,
    ProductNotFound,
    ProductUnavailable,
    TooManyCheckouts,
)
from storefront.fulfilment import abort_order
from storefront.payments import CheckoutRequest, PaymentError, PaymentGateway

log = logging.getLogger(__name__)
bp = Blueprint("checkout", __name__)

ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@bp.post("/checkout/<slug>")
async def checkout(slug: str) -> Response:
    """Start paying for a product: HX-Redirect for htmx, 303 for a plain form."""
    limiter = current_app.extensions["checkout_limiter"]
    client = limiter.client(request.remote_addr, request.headers.get("X-Forwarded-For"))
    if (wait := limiter.hit(client)) is not None:
        # Each checkout costs a Stripe API call: one client must not spend the account's limit.
        log.warning("checkout refused: too many from one client (retry after %ss)", wait)
        raise TooManyCheckouts(wait)
    form = await request.form
    settings = current_app.config["SETTINGS"]
    url = await start_checkout(
        current_app.extensions["db"],
        current_app.extensions["payments"],
        settings.base_url,
        slug,
        attempt=form.get("attempt"),
        allowed_payment_method_types=settings.allowed_payment_methods,
    )
    if request.headers.get("HX-Request") == "true":
        return Response("", status=204, headers={"HX-Redirect": url})
    return redirect(url, 303)


async def start_checkout(
    db: Database,
    payments: PaymentGateway,
    base_url: str,
    slug: str,
    *,
    attempt: str | None,
    allowed_payment_method_types: tuple[str, ...] = (),
) -> str:
    """Open (or find) the order and its Checkout Session; return the payment page URL."""
    product = await product_by_slug(db, slug)
    if product is None:
        raise ProductNotFound()
    if not product.active:
        raise ProductUnavailable()
    if attempt is not None and not ATTEMPT.match(attempt):
        attempt = None
    # Price and currency come from our database, never from the form.
    order = await orders.open_order(db, product.id, product.unit_amount, product.currency, attempt)
    checkout_request = CheckoutRequest(
        order_token=order.token,
        product_name=product.name,
        product_description=product.description,
        unit_amount=product.unit_amount,
        currency=product.currency,
        quantity=order.quantity,
        success_url=f"{base_url}/orders/{order.token}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base_url}/orders/{order.token}/cancelled",
        # Derived from the order: a retry or a second click replays the same session.
        idempotency_key=f"storefront-checkout-{order.token}",
        image_url=_image_url(base_url, product.image),
        allowed_payment_method_types=allowed_payment_method_types,
    )
    try:
        session = await payments.create_checkout_session(checkout_request)
    except PaymentError as error:
        log.warning("order_id=%s: checkout session not created: %s", order.id, error)
        if order.stripe_session_id is None:
            await abort_order(db, order.id)
        raise CheckoutUnavailable() from None
    if not session.url:
        log.warning("order_id=%s: session %s is no longer open", order.id, session.id)
        raise CheckoutUnavailable()
    await orders.attach_session(db, order.id, session.id)
    log.info("order_id=%s: checkout session %s created", order.id, session.id)
    return session.url


def _image_url(base_url: str, image: str | None) -> str | None:
    # Stripe fetches product images itself, so only public https URLs help.
    if not image:
        return None
    if image.startswith("https://"):
        return image
    if base_url.startswith("https://"):
        return f"{base_url}/static/{image.lstrip('/')}"
    return None
