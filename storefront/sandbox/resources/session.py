"""Checkout Sessions: the sandbox's state for one session and its complete JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import invalid
from ..objects import empty_address, list_object, new_id, payment_method_configuration
from ..pricing import Totals, price_session
from .charge import Charge, MethodDetails
from .discount import AppliedDiscount
from .line_item import LineItem
from .payment_intent import PaymentIntent
from .refund import Refund
from .session_totals import commerce_fields, line_items_json
from .shipping_rate import ShippingRate
from .tax import rate_for
from .terms import CommerceTerms

# Bank debits complete unpaid and settle later.
DELAYED_METHODS = ("sepa_debit",)


@dataclass(frozen=True)
class PendingAuth:
    """Card details waiting for the 3D Secure step (4000 0025 0000 3155)."""

    details: MethodDetails

    def form_values(self) -> dict[str, str]:
        """What the card form shows again when authentication fails."""
        return {"email": self.details.email, "name": self.details.name or ""}


@dataclass
class CheckoutSession:
    """One hosted Checkout Session in ``payment`` mode; changes only through its methods."""

    created: int
    expires_at: int
    currency: str
    line_items: tuple[LineItem, ...]
    success_url: str
    cancel_url: str | None
    client_reference_id: str | None
    customer_email: str | None
    locale: str | None
    metadata: dict[str, str]
    payment_method_types: list[str]
    allowed_payment_method_types: list[str] | None
    excluded_payment_method_types: list[str] | None
    payment_intent_metadata: dict[str, str]
    payment_intent_description: str | None
    public_base: str
    id: str = field(default_factory=lambda: new_id("cs_test_", 58))
    status: str = "open"
    payer: MethodDetails | None = None
    payment_intent: PaymentIntent | None = None
    pending_auth: PendingAuth | None = None
    terms: CommerceTerms = field(default_factory=CommerceTerms)
    discount: AppliedDiscount | None = None
    # {"name", "address"} once the shopper entered a shipping address.
    shipping_details: dict[str, Any] | None = None
    # Country and postal code asked for tax when no shipping address is collected.
    billing_address: dict[str, Any] | None = None
    rate_index: int = 0

    # -- derived fields ------------------------------------------------------------

    @property
    def shipping_rate(self) -> ShippingRate | None:
        """The chosen shipping rate; the first one until the shopper picks another."""
        options = self.terms.shipping_options
        return options[self.rate_index] if options else None

    @property
    def tax_country(self) -> str | None:
        """Where tax is owed: the shipping address, else the billing address."""
        for source in (self.shipping_details, {"address": self.billing_address}):
            address = (source or {}).get("address") or {}
            if address.get("country"):
                return address["country"]
        return None

    def totals(self) -> Totals:
        """Subtotal, discount spread over the lines, shipping, tax and total."""
        rate = rate_for(self.tax_country) if self.terms.automatic_tax else None
        shipping = self.shipping_rate
        return price_session(
            [(line.amount, line.inclusive) for line in self.line_items],
            self.discount.coupon.terms() if self.discount else None,
            shipping.amount if shipping else 0,
            shipping.inclusive if shipping else False,
            rate.percentage if rate else None,
        )

    @property
    def amount_total(self) -> int:
        """What the shopper pays: subtotal - discount + shipping + exclusive tax."""
        return self.totals().total

    def missing_inputs(self) -> str | None:
        """Why the session cannot be paid yet, or None when it can."""
        if self.terms.shipping_countries is not None and self.shipping_details is None:
            return "Enter a shipping address first."
        if self.terms.automatic_tax and self.tax_country is None:
            return "Enter your country and postal code first, so tax can be calculated."
        return None

    @property
    def payment_status(self) -> str:
        """``paid`` once the intent succeeded; a free session needs no payment."""
        if self.amount_total == 0:
            return "no_payment_required"
        if self.payment_intent is not None and self.payment_intent.status == "succeeded":
            return "paid"
        return "unpaid"

    @property
    def url(self) -> str | None:
        """The hosted page while the session is open."""
        return f"{self.public_base}/c/pay/{self.id}" if self.status == "open" else None

    @property
    def payment_intent_id(self) -> str | None:
        """The intent's id, once the shopper paid."""
        return self.payment_intent.id if self.payment_intent else None

    @property
    def charge(self) -> Charge | None:
        """The succeeded charge, once the money arrived."""
        return self.payment_intent.charge if self.payment_intent else None

    def is_due(self, now: int) -> bool:
        """True when an open session has passed ``expires_at``."""
        return self.status == "open" and self.expires_at <= now

    # -- transitions ---------------------------------------------------------------

    def collect_address(
        self, name: str, address: dict[str, Any] | None, rate_id: str | None, shipping: bool
    ) -> None:
        """Keep the shopper's shipping (or billing) address and chosen shipping rate."""
        if address is not None and shipping:
            self.shipping_details = {"address": address, "name": name}
        elif address is not None:
            self.billing_address = address
        ids = [rate.id for rate in self.terms.shipping_options]
        if rate_id in ids:
            self.rate_index = ids.index(rate_id)

    def apply_discount(self, discount: AppliedDiscount | None) -> None:
        """Apply a promotion code the shopper entered, or remove it (None)."""
        self.discount = discount

    def await_authentication(self, details: MethodDetails) -> None:
        """Hold the card until the shopper passes or fails 3D Secure."""
        self.pending_auth = PendingAuth(details)

    def drop_authentication(self) -> PendingAuth | None:
        """Forget a pending authentication (it failed); return what was pending."""
        pending, self.pending_auth = self.pending_auth, None
        return pending

    def complete(self, details: MethodDetails, now: int) -> bool:
        """The shopper paid: complete the session; return True when settlement is pending."""
        delayed = details.type in DELAYED_METHODS
        self.status = "complete"
        self.pending_auth = None
        self.payer = details
        if self.discount is not None:
            self.discount.redeem()
        self.payment_intent = PaymentIntent.start(
            amount=self.amount_total,
            currency=self.currency,
            now=now,
            method=details,
            metadata=self.payment_intent_metadata,
            description=self.payment_intent_description,
            delayed=delayed,
        )
        return delayed

    def settle(self, succeeded: bool, now: int) -> None:
        """A bank debit's outcome arrived: the intent succeeds or fails."""
        if self.payment_intent is None or self.payment_intent.status != "processing":
            raise ValueError(f"session {self.id} has no payment waiting to settle")
        if succeeded:
            self.payment_intent.succeed(now)
        else:
            self.payment_intent.fail()

    def expire(self) -> None:
        """Close an open session for good, or answer Stripe's 400."""
        if self.status != "open":
            raise invalid(
                f"This Checkout Session is {self.status} and can no longer be expired. "
                'Only Checkout Sessions with a status in ["open"] can be expired.',
            )
        self.status = "expired"
        self.pending_auth = None

    def move_back(self, seconds: int) -> None:
        """Shift ``created`` and ``expires_at`` into the past (tests only)."""
        self.created -= seconds
        self.expires_at -= seconds

    def refund(
        self, amount: int | None, now: int, metadata: dict[str, str], reason: str | None
    ) -> Refund:
        """Refund part or all of the paid charge, or answer Stripe's 400."""
        charge = self.charge
        if charge is None or self.payment_status != "paid":
            raise invalid(
                f"This PaymentIntent ({self.payment_intent_id}) does not have a successful "
                "charge to refund.",
                "payment_intent",
                "charge_not_refundable" if charge is None else None,
            )
        return charge.refund(amount, now, metadata, reason)

    # -- rendering -----------------------------------------------------------------

    def line_items_list(self, include: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The line items as a Stripe list; ``include`` may ask for discounts and taxes."""
        return list_object(
            f"/v1/checkout/sessions/{self.id}/line_items",
            line_items_json(self, include),
        )

    def _customer_details(self) -> dict[str, Any] | None:
        if self.payer is None:
            return None
        # Stripe records the billing address, or the shipping address when it asked none.
        address = self.billing_address or (self.shipping_details or {}).get("address")
        return {
            "address": {**empty_address(), **address} if address else None,
            "business_name": None,
            "email": self.payer.email,
            "individual_name": None,
            "name": self.payer.name,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }

    def _payment_method_options(self) -> dict[str, Any]:
        # Only methods with settings appear; cards always have their 3D Secure default.
        if "card" in self.payment_method_types:
            return {"card": {"request_three_d_secure": "automatic"}}
        return {}

    def to_stripe(self, expand: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
        """The complete ``checkout.session``, with ``line_items``/``payment_intent`` expanded."""
        intent: Any = self.payment_intent_id
        if "payment_intent" in expand and self.payment_intent is not None:
            intent = self.payment_intent.to_stripe()
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "checkout.session",
            "adaptive_pricing": None,
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": self.amount_total,
            "amount_total": self.amount_total,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "billing_address_collection": None,
            "cancel_url": self.cancel_url,
            "client_reference_id": self.client_reference_id,
            "client_secret": None,
            "collected_information": None,
            "consent": None,
            "consent_collection": None,
            "created": self.created,
            "currency": self.currency,
            "currency_conversion": None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": None,
            "customer_account": None,
            "customer_creation": "if_required",
            "customer_details": self._customer_details(),
            "customer_email": self.customer_email,
            "discounts": [],
            "expires_at": self.expires_at,
            "integration_identifier": None,
            "invoice": None,
            "invoice_creation": {
                "enabled": False,
                "invoice_data": {
                    "account_tax_ids": None,
                    "custom_fields": None,
                    "description": None,
                    "footer": None,
                    "issuer": None,
                    "metadata": {},
                    "rendering_options": None,
                },
            },
            "livemode": False,
            "locale": self.locale,
            "managed_payments": None,
            "metadata": dict(self.metadata),
            "mode": "payment",
            "optional_items": None,
            "origin_context": None,
            "payment_intent": intent,
            "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_configuration_details": payment_method_configuration(),
            "payment_method_options": self._payment_method_options(),
            "payment_method_types": list(self.payment_method_types),
            "payment_status": self.payment_status,
            "permissions": None,
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": self.status,
            "submit_type": None,
            "subscription": None,
            "success_url": self.success_url,
            "tax_id_collection": {"enabled": False, "required": "never"},
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted_page",
            "url": self.url,
            "wallet_options": None,
        }
        # Sent only when the create call set them, like excluded_payment_method_types.
        if self.allowed_payment_method_types is not None:
            obj["allowed_payment_method_types"] = list(self.allowed_payment_method_types)
        if self.excluded_payment_method_types is not None:
            obj["excluded_payment_method_types"] = list(self.excluded_payment_method_types)
        # Expanding a line's discounts or taxes expands the line items too.
        nested = frozenset(
            path.removeprefix("line_items.data.")
            for path in expand
            if path.startswith("line_items.data.")
        )
        if "line_items" in expand or nested:
            obj["line_items"] = self.line_items_list(nested)
        obj.update(commerce_fields(self, expand))
        return obj
