"""POST /checkout/<product>: open an order and send the shopper to pay."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, current_app, redirect, request

from storefront.carts import OutOfStock
from storefront.errors import (
    CheckoutUnavailable,
    ProductNotFound,
    ProductUnavailable,
    SoldOut,
    TooManyCheckouts,
)
from storefront.fulfilment import abort_order
from storefront.payments import CheckoutRequest, PaymentError, PaymentGateway, ShippingRate
from storefront.stock_live import card_sold_out
from storefront.store import Store

if TYPE_CHECKING:
    from storefront.config import Settings
    from storefront.orders import Order

log = logging.getLogger(__name__)
bp = Blueprint("checkout", __name__)

ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# Stripe takes expires_at from 30 minutes to 24 hours after it creates the
# session. Stay a minute inside both ends: the clocks differ a little, and a
# retried call reaches Stripe later than it was made.
MIN_LIFETIME, MAX_LIFETIME, EXPIRY_SLACK = 30 * 60, 24 * 60 * 60, 60


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
    db = current_app.extensions["db"]
    try:
        url = await start_checkout(
            db,
            current_app.extensions["payments"],
            settings.base_url,
            slug,
            attempt=form.get("attempt"),
            allowed_payment_method_types=settings.allowed_payment_methods,
            expires_after=settings.checkout_expires_after,
            options=CheckoutOptions.from_settings(settings),
        )
    except SoldOut as error:
        if request.headers.get("HX-Request") != "true":
            raise
        # The card that was pressed shows what is left now, not only a message.
        return await card_sold_out(db, slug, error)
    return send_to_payment(url)


def send_to_payment(url: str) -> Response:
    """HX-Redirect for htmx, 303 for a plain form."""
    if request.headers.get("HX-Request") == "true":
        return Response("", status=204, headers={"HX-Redirect": url})
    return redirect(url, 303)


@dataclass(frozen=True)
class CheckoutOptions:
    """What the shopkeeper's settings add to every session."""

    shipping_countries: tuple[str, ...] = ()
    shipping_rates: tuple[ShippingRate, ...] = ()
    allow_promotion_codes: bool = False
    automatic_tax: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckoutOptions:
        """The options the settings ask for."""
        return cls(
            shipping_countries=settings.shipping_countries,
            shipping_rates=tuple(ShippingRate(*rate) for rate in settings.shipping_rates),
            allow_promotion_codes=settings.allow_promotion_codes,
            automatic_tax=settings.automatic_tax,
        )

    def request_fields(self, physical: bool) -> dict[str, Any]:
        """The CheckoutRequest fields for a cart that does (or does not) ship."""
        fields: dict[str, Any] = {
            "allow_promotion_codes": self.allow_promotion_codes,
            "automatic_tax": self.automatic_tax,
        }
        if physical:
            fields["shipping_countries"] = self.shipping_countries
            fields["shipping_rates"] = self.shipping_rates
        return fields


async def start_checkout(
    db: Store,
    payments: PaymentGateway,
    base_url: str,
    slug: str,
    *,
    attempt: str | None,
    expires_after: int,
    allowed_payment_method_types: tuple[str, ...] = (),
    options: CheckoutOptions | None = None,
) -> str:
    """Open (or find) the order and its Checkout Session; return the payment page URL.

    The session stops taking payments ``expires_after`` seconds after the
    order was opened; the order stores when, and the reconciler waits for it.
    """
    product = await db.product_by_slug(slug)
    if product is None:
        raise ProductNotFound()
    if not product.active:
        raise ProductUnavailable()
    if attempt is not None and not ATTEMPT.match(attempt):
        attempt = None
    # Price and currency come from our database, never from the form.
    try:
        order = await db.open_order(
            product.id,
            product.unit_amount,
            product.currency,
            attempt,
            expires_at=session_expires_at(time.time(), expires_after),
        )
    except OutOfStock as short:
        raise SoldOut(short.short) from None
    options = options or CheckoutOptions()
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
        image_url=image_url(base_url, product.image),
        allowed_payment_method_types=allowed_payment_method_types,
        expires_at=order.expires_at,
        **options.request_fields(product.physical),
    )
    return await open_session(db, payments, order, checkout_request)


async def open_session(
    db: Store, payments: PaymentGateway, order: Order, checkout_request: CheckoutRequest
) -> str:
    """Create the order's Checkout Session and attach it; the payment page URL.

    Stripe unreachable aborts the order (releasing its stock); an order given
    up on meanwhile has its new session expired at once.
    """
    if checkout_request.shipping_rates:
        # Written down before Stripe is asked: the paid shipping is checked against it.
        await db.offer_shipping(
            order.id, [rate.amount for rate in checkout_request.shipping_rates]
        )
    try:
        session = await payments.create_checkout_session(checkout_request)
    except PaymentError as error:
        log.warning("order_id=%s: checkout session not created: %s", order.id, error)
        # Only an order without a session: a twin click may have attached one.
        await abort_order(db, order.id)
        raise CheckoutUnavailable() from None
    if not session.url:
        log.warning("order_id=%s: session %s is no longer open", order.id, session.id)
        raise CheckoutUnavailable()
    if not await db.attach_session(order.id, session.id):
        # The order was given up on while we waited for Stripe (the reconciler
        # aborted it): nobody must pay this session, so close it at once.
        log.warning(
            "order_id=%s moved on while its checkout waited; expiring session %s",
            order.id,
            session.id,
        )
        await _expire_quietly(payments, order.id, session.id)
        raise CheckoutUnavailable()
    log.info("order_id=%s: checkout session %s created", order.id, session.id)
    return session.url


def session_expires_at(now: float, expires_after: int) -> int:
    """The expires_at to send for a checkout starting at ``now`` (unix seconds)."""
    low, high = MIN_LIFETIME + EXPIRY_SLACK, MAX_LIFETIME - EXPIRY_SLACK
    return int(now) + min(max(expires_after, low), high)


async def _expire_quietly(payments: PaymentGateway, order_id: int, session_id: str) -> None:
    try:
        await payments.expire_session(session_id)
    except PaymentError as error:
        # The shopper never got its URL, and Stripe expires it at expires_at anyway.
        log.warning("order_id=%s: could not expire session %s: %s", order_id, session_id, error)


def image_url(base_url: str, image: str | None) -> str | None:
    """The product image URL Stripe can fetch, if any."""
    # Stripe fetches product images itself, so only public https URLs help.
    if not image:
        return None
    if image.startswith("https://"):
        return image
    if base_url.startswith("https://"):
        return f"{base_url}/static/{image.lstrip('/')}"
    return None
