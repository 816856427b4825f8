"""The only module that talks to Stripe (or the sandbox) through the SDK."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import stripe

from storefront.evidence import Totals, session_totals
from storefront.paid_lines import LineAmounts, line_amounts

if TYPE_CHECKING:
    from storefront.catalog import NewProduct
    from storefront.config import Settings

log = logging.getLogger(__name__)

SIGNATURE_TOLERANCE = 300  # seconds, as Stripe's own libraries use
_PLAIN_TIMESTAMP = re.compile(r"\A[0-9]{1,12}\Z")

# The one place the shop names the Stripe API version it speaks: the version the
# installed stripe-python was generated for. Every request carries it, so a
# change of the account's default version in the Dashboard cannot change the
# shapes the shop reads. To upgrade: install the new SDK, set this to its
# ``stripe.api_version``, read Stripe's changelog for the versions in between,
# and run the suite (the sandbox speaks this version too).
STRIPE_API_VERSION = "2026-10-28.endive"


# The HTTP client's limit for one request, and the SDK's longest sleep between
# retries (stripe-python's HTTPClient.MAX_DELAY): together they bound a call.
REQUEST_TIMEOUT = 30.0
MAX_RETRY_SLEEP = 5.0
# Room for a busy event loop and the database writes around the call.
CALL_MARGIN = 60.0


def longest_call(max_network_retries: int) -> float:
    """Seconds one SDK call can take at most, every retry and backoff included."""
    attempts = max_network_retries + 1
    return attempts * REQUEST_TIMEOUT + max_network_retries * MAX_RETRY_SLEEP + CALL_MARGIN


class PaymentError(Exception):
    """Stripe could not do what we asked; safe to log, never shown to shoppers.

    ``http_status`` and ``code`` are Stripe's (None when Stripe never answered),
    so callers can tell "no such object" from "Stripe is down".
    """

    def __init__(self, message: str, *, http_status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.http_status = http_status
        self.code = code

    @property
    def missing(self) -> bool:
        """Stripe answered that the object does not exist (404 resource_missing)."""
        return self.http_status == 404 and self.code == "resource_missing"


class SignatureError(Exception):
    """A webhook's Stripe-Signature is missing, malformed, forged or stale."""


@dataclass(frozen=True)
class CheckoutRequest:
    """What a Checkout Session is created from: all of it from our database."""

    order_token: str
    product_name: str
    product_description: str
    unit_amount: int
    currency: str
    quantity: int
    success_url: str
    cancel_url: str
    idempotency_key: str
    image_url: str | None = None
    # Empty: Stripe offers every method the Dashboard enables and the session suits;
    # otherwise only those among them that are also in this list.
    allowed_payment_method_types: tuple[str, ...] = ()
    # Unix seconds when the session stops taking payments (None: Stripe's 24 h).
    expires_at: int | None = None
    # A cart's lines; empty: the one product above.
    lines: tuple[CheckoutLine, ...] = ()
    # Physical goods: the countries Stripe may ship to and the rates it offers.
    shipping_countries: tuple[str, ...] = ()
    shipping_rates: tuple[ShippingRate, ...] = ()
    allow_promotion_codes: bool = False
    automatic_tax: bool = False


@dataclass(frozen=True)
class CheckoutLine:
    """One line item of a cart's session, priced from our database."""

    name: str
    description: str
    unit_amount: int
    quantity: int
    image_url: str | None = None


@dataclass(frozen=True)
class ShippingRate:
    """A shipping rate the shopkeeper offers, in the session's currency."""

    name: str
    amount: int
    min_days: int | None = None
    max_days: int | None = None


@dataclass(frozen=True)
class CheckoutSession:
    """The parts of a Checkout Session the shop reads."""

    id: str
    url: str | None
    status: str
    payment_status: str
    client_reference_id: str | None = None
    payment_intent: str | None = None
    customer_email: str | None = None
    # What Stripe will charge or charged: cross-checked against the order.
    amount_total: int | None = None
    currency: str | None = None
    expires_at: int | None = None
    totals: Totals = field(default_factory=Totals)


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook event as plain data."""

    id: str
    type: str
    object: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refund:
    """A refund Stripe accepted."""

    id: str
    amount: int
    status: str


@dataclass(frozen=True)
class UndeliveredEvent:
    """An event Stripe has not managed to deliver to us."""

    event: WebhookEvent
    created: int


class PaymentGateway(Protocol):
    """What the shop needs from a payment provider (fakes implement this in tests)."""

    @property
    def longest_call(self) -> float:
        """Seconds a call (a checkout's session create) can take at most."""
        ...

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession: ...

    async def retrieve_session(self, session_id: str) -> CheckoutSession: ...

    async def expire_session(self, session_id: str) -> CheckoutSession: ...

    async def line_items(self, session_id: str) -> tuple[LineAmounts, ...]: ...

    async def find_session_by_payment_intent(
        self, payment_intent: str
    ) -> CheckoutSession | None: ...

    def verify_webhook(self, payload: bytes, header: str | None) -> WebhookEvent: ...

    async def create_refund(
        self, payment_intent: str, amount: int, idempotency_key: str
    ) -> Refund: ...

    async def undelivered_events(self, since: int, limit: int = 100) -> list[UndeliveredEvent]: ...

    async def retrieve_event(self, event_id: str) -> WebhookEvent: ...


def _session(obj: Mapping[str, Any]) -> CheckoutSession:
    details = obj.get("customer_details") or {}
    intent = obj.get("payment_intent")
    amount, currency, expires_at = (
        obj.get("amount_total"),
        obj.get("currency"),
        obj.get("expires_at"),
    )
    return CheckoutSession(
        id=obj["id"],
        url=obj.get("url"),
        status=obj.get("status") or "open",
        payment_status=obj.get("payment_status") or "unpaid",
        client_reference_id=obj.get("client_reference_id"),
        # payment_intent may come expanded into an object.
        payment_intent=intent if isinstance(intent, str) or intent is None else intent.get("id"),
        customer_email=details.get("email"),
        amount_total=amount if isinstance(amount, int) else None,
        currency=currency.lower() if isinstance(currency, str) else None,
        expires_at=expires_at if isinstance(expires_at, int) else None,
        totals=session_totals(obj),
    )


class StripePayments:
    """A PaymentGateway over the official SDK's async API."""

    def __init__(
        self,
        secret_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
    ):
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self._api_base = api_base
        self._max_network_retries = max_network_retries
        self._http: stripe.AIOHTTPClient | None = None
        self._client: stripe.StripeClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> StripePayments:
        """A gateway configured by the shop's settings (Stripe or the sandbox)."""
        return cls(
            settings.stripe_secret_key,
            settings.webhook_secret,
            api_base=settings.api_base,
            max_network_retries=settings.max_network_retries,
        )

    @property
    def longest_call(self) -> float:
        """Seconds one call can take at most with this gateway's retries."""
        return longest_call(self._max_network_retries)

    async def open(self) -> None:
        """Build the client inside the serving event loop."""
        self._http = stripe.AIOHTTPClient(timeout=REQUEST_TIMEOUT)
        self._client = stripe.StripeClient(
            self._secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": self._api_base} if self._api_base else None,
            http_client=self._http,
            max_network_retries=self._max_network_retries,
        )

    async def close(self) -> None:
        """Close the HTTP client's connections."""
        if self._http is not None:
            await self._http.close_async()
        self._http = self._client = None

    @property
    def _v1(self) -> Any:
        assert self._client is not None, "payments are not open"
        return self._client.v1

    async def _call(
        self, method: str, path: str, idempotency_key: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """One API call through the SDK, its answer as Stripe's plain JSON.

        The SDK still signs, versions, retries and raises ``StripeError`` as for
        its typed methods; only the answer is not built into ``StripeObject``s,
        which the shop turned straight back into a dict. For a Checkout Session
        that round trip was half the SDK's CPU per checkout (``bench/CPU.md``).
        """
        assert self._client is not None, "payments are not open"
        if idempotency_key is not None:
            params["idempotency_key"] = idempotency_key
        try:
            answer = await self._client.raw_request_async(method, path, **params)
        except stripe.StripeError as error:
            raise _payment_error(error) from error
        return answer.data

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Create a one-time payment session; safe to repeat with the same key."""
        lines = request.lines or (
            CheckoutLine(
                request.product_name,
                request.product_description,
                request.unit_amount,
                request.quantity,
                request.image_url,
            ),
        )
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [_line_item(line, request.currency) for line in lines],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.order_token,
            "metadata": {"order_token": request.order_token},
            "payment_intent_data": {"metadata": {"order_token": request.order_token}},
        }
        if request.allowed_payment_method_types:
            # payment_method_types is gone from session create since 2026-10-28.endive.
            params["allowed_payment_method_types"] = list(request.allowed_payment_method_types)
        if request.expires_at is not None:
            params["expires_at"] = request.expires_at
        if request.shipping_countries:
            params["shipping_address_collection"] = {
                "allowed_countries": list(request.shipping_countries)
            }
            params["shipping_options"] = [
                {"shipping_rate_data": _shipping_rate(rate, request.currency)}
                for rate in request.shipping_rates
            ]
        if request.allow_promotion_codes:
            params["allow_promotion_codes"] = True
        if request.automatic_tax:
            params["automatic_tax"] = {"enabled": True}
        return _session(
            await self._call("post", "/v1/checkout/sessions", request.idempotency_key, **params)
        )

    async def retrieve_session(self, session_id: str) -> CheckoutSession:
        """Fetch a session's current state from Stripe."""
        # With its line items, in the same call: what each line cost is stored when paid.
        return _session(await self._call("get", _session_path(session_id), expand=["line_items"]))

    async def line_items(self, session_id: str) -> tuple[LineAmounts, ...]:
        """The session's line items as Stripe priced them (a cart holds at most 50)."""
        page = await self._call("get", f"{_session_path(session_id)}/line_items", limit=100)
        return line_amounts(page)

    async def expire_session(self, session_id: str) -> CheckoutSession:
        """Expire an open session so it can no longer be paid."""
        return _session(await self._call("post", f"{_session_path(session_id)}/expire"))

    async def find_session_by_payment_intent(self, payment_intent: str) -> CheckoutSession | None:
        """The Checkout Session that created this payment intent, if it is one of ours."""
        page = await self._call(
            "get", "/v1/checkout/sessions", payment_intent=payment_intent, limit=1
        )
        return _session(page["data"][0]) if page.get("data") else None

    async def create_refund(
        self, payment_intent: str, amount: int, idempotency_key: str
    ) -> Refund:
        """Refund ``amount`` of a payment; the same key replays the same refund."""
        try:
            refund = await self._v1.refunds.create_async(
                params={"payment_intent": payment_intent, "amount": amount},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise _payment_error(error) from error
        return Refund(id=refund.id, amount=refund.amount, status=refund.status or "")

    async def undelivered_events(self, since: int, limit: int = 100) -> list[UndeliveredEvent]:
        """Events Stripe failed to deliver since ``since`` (unix seconds), newest first."""
        try:
            page = await self._v1.events.list_async(
                params={"delivery_success": False, "limit": limit}
            )
        except stripe.StripeError as error:
            raise _payment_error(error) from error
        found = []
        for item in page.data:
            data = item.to_dict()
            # Stripe keeps events for 30 days; older ones are filtered here.
            if int(data["created"]) < since:
                continue
            found.append(UndeliveredEvent(event=_event(data), created=int(data["created"])))
        return found

    async def retrieve_event(self, event_id: str) -> WebhookEvent:
        """Fetch one event from Stripe (a webhook it never delivered)."""
        try:
            item = await self._v1.events.retrieve_async(event_id)
        except stripe.StripeError as error:
            raise _payment_error(error) from error
        return _event(item.to_dict())

    async def active_catalog(self) -> tuple[list[NewProduct], list[str]]:
        """The account's active Products with their one-time Prices, as our products.

        A product's slug is its ``metadata.slug`` if valid, else made from its id;
        its price is the default price, else its first active one-time price.
        Returns the products and a line per product that could not be taken.
        """
        from storefront.catalog import NewProduct

        found: list[NewProduct] = []
        skipped: list[str] = []
        try:
            products = await self._v1.products.list_async(params={"active": True, "limit": 100})
            async for product in products.auto_paging_iter():
                obj = product.to_dict()
                price = await self._price_for(obj)
                if price is None:
                    skipped.append(f"{obj['id']}: no active one-time price")
                    continue
                metadata = obj.get("metadata") or {}
                slug = metadata.get("slug") or obj["id"].lower().replace("_", "-")
                try:
                    found.append(
                        NewProduct.parse(
                            {
                                "slug": slug,
                                "name": obj.get("name") or obj["id"],
                                "description": obj.get("description") or "",
                                "price": _major(price["unit_amount"], price["currency"]),
                                "currency": price["currency"],
                                "image": next(iter(obj.get("images") or []), None),
                                "kind": "physical" if obj.get("shippable") else "digital",
                            }
                        )
                    )
                except ValueError as error:
                    skipped.append(f"{obj['id']}: {error}")
        except stripe.StripeError as error:
            raise _payment_error(error) from error
        return found, skipped

    async def _price_for(self, product: Mapping[str, Any]) -> Mapping[str, Any] | None:
        default = product.get("default_price")
        if isinstance(default, str):
            price = (await self._v1.prices.retrieve_async(default)).to_dict()
            if price.get("active") and price.get("unit_amount") is not None:
                return price
        prices = await self._v1.prices.list_async(
            params={"product": product["id"], "active": True, "limit": 10}
        )
        for price in prices.data:
            obj = price.to_dict()
            if obj.get("type", "one_time") == "one_time" and obj.get("unit_amount") is not None:
                return obj
        return None

    def verify_webhook(self, payload: bytes, header: str | None) -> WebhookEvent:
        """Check the signature over the raw bytes and parse the event."""
        _reject_future_timestamp(header or "")
        try:
            stripe.WebhookSignature.verify_header(
                payload, header, self._webhook_secret, tolerance=SIGNATURE_TOLERANCE
            )
        except stripe.SignatureVerificationError as error:
            raise SignatureError(str(error).split(".")[0]) from None
        except UnicodeDecodeError:
            raise SignatureError("payload is not UTF-8") from None
        try:
            data = json.loads(payload)
            event = WebhookEvent(id=data["id"], type=data["type"], object=data["data"]["object"])
        # RecursionError: a signed but absurdly nested body; a 500 would be retried for days.
        except (ValueError, KeyError, TypeError, RecursionError):
            raise SignatureError("signed payload is not a Stripe event") from None
        if not (
            isinstance(event.id, str) and isinstance(event.type, str) and event.id
        ) or not isinstance(event.object, dict):
            raise SignatureError("signed payload is not a Stripe event")
        return event


def _session_path(session_id: str) -> str:
    # An id is Stripe's, but it goes into a path: quote it as the typed methods do.
    return f"/v1/checkout/sessions/{quote(session_id, safe='')}"


def _event(data: Mapping[str, Any]) -> WebhookEvent:
    return WebhookEvent(id=data["id"], type=data["type"], object=dict(data["data"]["object"]))


def _major(amount: int, currency: str) -> str:
    # Prices are imported as the shopkeeper would type them: "19.99".
    from storefront.money import exponent

    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


def _line_item(line: CheckoutLine, currency: str) -> dict[str, Any]:
    product_data: dict[str, Any] = {"name": line.name}
    if line.description:
        product_data["description"] = line.description
    if line.image_url:
        product_data["images"] = [line.image_url]
    return {
        "price_data": {
            "currency": currency,
            "unit_amount": line.unit_amount,
            "product_data": product_data,
        },
        "quantity": line.quantity,
    }


def _shipping_rate(rate: ShippingRate, currency: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "display_name": rate.name,
        "type": "fixed_amount",
        "fixed_amount": {"amount": rate.amount, "currency": currency},
    }
    if rate.min_days is not None and rate.max_days is not None:
        data["delivery_estimate"] = {
            "minimum": {"unit": "business_day", "value": rate.min_days},
            "maximum": {"unit": "business_day", "value": rate.max_days},
        }
    return data


def _reject_future_timestamp(header: str) -> None:
    # The SDK checks only for old timestamps; a far-future one is as suspect.
    # It also reads t with int(), which takes "+17…", "1_7…" and other scripts'
    # digits that a plain-digits check would skip: accept nothing but 0-9.
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key.strip() != "t":
            continue
        if not _PLAIN_TIMESTAMP.match(value):
            raise SignatureError("timestamp is not a plain number")
        if int(value) > time.time() + SIGNATURE_TOLERANCE:
            raise SignatureError("timestamp is in the future")


def _payment_error(error: stripe.StripeError) -> PaymentError:
    status = getattr(error, "http_status", None)
    code = getattr(error, "code", None)
    return PaymentError(
        _describe(error),
        http_status=status if isinstance(status, int) else None,
        code=code if isinstance(code, str) else None,
    )


def _describe(error: stripe.StripeError) -> str:
    # Stripe's own message plus its code; no request body, no key.
    kind = type(error).__name__
    status = getattr(error, "http_status", None)
    return f"{kind} (HTTP {status}): {error.user_message or 'no message'}"
