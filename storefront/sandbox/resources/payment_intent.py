"""Payment intents: what a completed session's payment does, and its charge once it succeeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id, payment_method_configuration
from .charge import Charge, MethodDetails

# What Stripe reports when a SEPA Direct Debit bounces (test IBANs ending ...3001 and so on).
DEBIT_FAILED = "The customer's bank account could not be debited."


@dataclass
class PaymentIntent:
    """A Checkout payment intent: succeeded at once for cards, processing for bank debits."""

    amount: int
    currency: str
    created: int
    method: MethodDetails
    metadata: dict[str, str]
    description: str | None
    status: str = "processing"
    charge: Charge | None = None
    failure: str | None = None
    id: str = field(default_factory=lambda: new_id("pi_"))
    payment_method_id: str = field(default_factory=lambda: new_id("pm_"))
    mandate: str | None = None
    secret_suffix: str = field(default_factory=lambda: new_id("secret_"))

    @classmethod
    def start(
        cls,
        *,
        amount: int,
        currency: str,
        now: int,
        method: MethodDetails,
        metadata: dict[str, str],
        description: str | None,
        delayed: bool,
    ) -> PaymentIntent:
        """The intent a paying shopper creates; a delayed method waits for settlement."""
        intent = cls(amount, currency, now, method, dict(metadata), description)
        if method.type == "sepa_debit":
            intent.mandate = new_id("mandate_")
        if not delayed:
            intent.succeed(now)
        return intent

    def succeed(self, now: int) -> None:
        """The money arrived: the intent succeeds with one charge."""
        self.status = "succeeded"
        self.charge = Charge(
            amount=self.amount,
            currency=self.currency,
            created=now,
            payment_intent_id=self.id,
            payment_method_id=self.payment_method_id,
            method=self.method,
            metadata=dict(self.metadata),
            description=self.description,
            mandate=self.mandate,
        )

    def fail(self) -> None:
        """The debit bounced: the intent asks for another payment method."""
        self.status = "requires_payment_method"
        self.failure = DEBIT_FAILED

    def _method_options(self) -> dict[str, Any]:
        if self.method.type == "sepa_debit":
            return {"sepa_debit": {"mandate_options": None, "setup_future_usage": None}}
        return {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        }

    def _last_error(self) -> dict[str, Any] | None:
        if self.failure is None:
            return None
        return {
            # Error fields that do not apply are left out, as in Stripe's error objects.
            "code": "payment_method_provider_decline",
            "doc_url": "https://docs.stripe.com/error-codes/payment-method-provider-decline",
            "message": self.failure,
            "payment_method_type": self.method.type,
            "type": "invalid_request_error",
        }

    def to_stripe(self) -> dict[str, Any]:
        """The complete ``payment_intent``."""
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": 0,
            "amount_received": self.amount if self.status == "succeeded" else 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic_async",
            "client_secret": f"{self.id}_{self.secret_suffix}",
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": None,
            "customer_account": None,
            "description": self.description,
            "excluded_payment_method_types": None,
            "last_payment_error": self._last_error(),
            "latest_charge": self.charge.id if self.charge else None,
            "livemode": False,
            "managed_payments": None,
            "metadata": dict(self.metadata),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": self.payment_method_id if self.failure is None else None,
            "payment_method_configuration_details": payment_method_configuration(),
            "payment_method_options": self._method_options(),
            "payment_method_types": [self.method.type],
            "processing": None,
            "receipt_email": None,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": self.status,
            "transfer_data": None,
            "transfer_group": None,
        }
