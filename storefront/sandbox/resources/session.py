"""Checkout Sessions: the sandbox's state for one session and its complete JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import invalid
from ..objects import list_object, new_id, payment_method_configuration
from .charge import Charge, MethodDetails
from .line_item import LineItem
from .payment_intent import PaymentIntent
from .refund import Refund

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

    # -- derived fields ------------------------------------------------------------

    @property
    def amount_total(self) -> int:
        """The sum of the lines (no discounts, shipping or taxes in the sandbox)."""
        return sum(line.amount for line in self.line_items)

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

    def line_items_list(self) -> dict[str, Any]:
        """The session's line items as a Stripe list."""
        return list_object(
            f"/v1/checkout/sessions/{self.id}/line_items",
            [line.to_stripe() for line in self.line_items],
        )

    def _customer_details(self) -> dict[str, Any] | None:
        if self.payer is None:
            return None
        return {
            "address": None,
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
        if "line_items" in expand:
            obj["line_items"] = self.line_items_list()
        return obj
