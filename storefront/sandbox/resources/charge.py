"""Charges: the money movement of a paid payment intent, with its refunds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import invalid
from ..objects import empty_address, new_id
from .refund import Refund


@dataclass(frozen=True)
class MethodDetails:
    """What the payment page learnt about the payment method: a card or a SEPA debit."""

    type: str
    email: str
    name: str | None
    # Card fields default to the 4242 test card; a debit uses last4, country, bank_code.
    last4: str = "4242"
    brand: str = "visa"
    exp_month: int = 12
    exp_year: int = 2034
    country: str = "US"
    bank_code: str | None = None
    authenticated: bool = False

    @property
    def fingerprint(self) -> str:
        """Stable per card or account, like Stripe's."""
        seed = f"{self.type}:{self.country}:{self.bank_code}:{self.last4}"
        if self.type == "card":
            seed += f":{self.brand}:{self.exp_month}:{self.exp_year}"
        return hashlib.sha256(seed.encode()).hexdigest()[:16]

    def billing_details(self) -> dict[str, Any]:
        """``billing_details`` as the payment page collected them."""
        return {
            "address": empty_address(),
            "email": self.email,
            "name": self.name,
            "phone": None,
            "tax_id": None,
        }

    def charge_details(self, amount: int, mandate: str | None) -> dict[str, Any]:
        """``payment_method_details``: the type and the sub-object of that type only."""
        if self.type == "sepa_debit":
            return {
                "type": "sepa_debit",
                "sepa_debit": {
                    "bank_code": self.bank_code,
                    "branch_code": None,
                    "country": self.country,
                    "expected_debit_date": None,
                    "fingerprint": self.fingerprint,
                    "last4": self.last4,
                    "mandate": mandate,
                },
            }
        return {"type": "card", "card": self._card(amount)}

    def _card(self, amount: int) -> dict[str, Any]:
        return {
            "amount_authorized": amount,
            "authorization_code": None,
            "brand": self.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": self.country,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": self.fingerprint,
            "funding": "credit",
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": self.last4,
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": self.brand,
            "network_token": {"used": False},
            "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": self._three_d_secure() if self.authenticated else None,
            "wallet": None,
        }

    @staticmethod
    def _three_d_secure() -> dict[str, Any]:
        return {
            "authentication_flow": "challenge",
            "electronic_commerce_indicator": "05",
            "exemption_indicator": None,
            "exemption_indicator_applied": False,
            "result": "authenticated",
            "result_reason": None,
            "transaction_id": None,
            "version": "2.2.0",
        }

    def outcome(self) -> dict[str, Any]:
        """Radar's verdict: card payments are assessed, bank debits are not."""
        card = self.type == "card"
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal" if card else "not_assessed",
            "risk_score": 20 if card else None,
            "rule": None,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }


@dataclass
class Charge:
    """A succeeded charge; refunds lower what is left of it."""

    amount: int
    currency: str
    created: int
    payment_intent_id: str
    payment_method_id: str
    method: MethodDetails
    metadata: dict[str, str]
    description: str | None
    mandate: str | None = None
    amount_refunded: int = 0
    # Set for good once a dispute is opened on it, as Stripe's flag is.
    disputed: bool = False
    refunds: list[Refund] = field(default_factory=list)
    id: str = field(default_factory=lambda: new_id("ch_"))
    balance_transaction: str = field(default_factory=lambda: new_id("txn_"))

    @property
    def refunded(self) -> bool:
        """True once the whole amount went back."""
        return self.amount_refunded == self.amount

    def refund(
        self, amount: int | None, now: int, metadata: dict[str, str], reason: str | None
    ) -> Refund:
        """Refund ``amount`` (default: what is left), or a Stripe 400 when it cannot be."""
        remaining = self.amount - self.amount_refunded
        if self.disputed:
            raise invalid(
                f"Charge {self.id} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        if remaining == 0:
            raise invalid(
                f"Charge {self.id} has already been refunded.", code="charge_already_refunded"
            )
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                "amount",
            )
        refund = Refund(
            amount=amount,
            charge_id=self.id,
            payment_intent_id=self.payment_intent_id,
            payment_method_id=self.payment_method_id,
            currency=self.currency,
            created=now,
            metadata=metadata,
            reason=reason,
        )
        self.refunds.insert(0, refund)
        self.amount_refunded += amount
        return refund

    def changed_by(self, refund: Refund) -> dict[str, Any]:
        """``previous_attributes`` of the ``charge.refunded`` event ``refund`` caused."""
        before: dict[str, Any] = {"amount_refunded": self.amount_refunded - refund.amount}
        if self.refunded:
            before["refunded"] = False
        return before

    def to_stripe(self) -> dict[str, Any]:
        """The complete ``charge``; ``refunds`` is left out as Stripe does unless expanded."""
        return {
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount,
            "amount_refunded": self.amount_refunded,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": self.balance_transaction,
            "billing_details": self.method.billing_details(),
            "calculated_statement_descriptor": "SANDBOX",
            "captured": True,
            "created": self.created,
            "currency": self.currency,
            "customer": None,
            "description": self.description,
            "disputed": self.disputed,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "fraud_details": {},
            "livemode": False,
            "metadata": dict(self.metadata),
            "on_behalf_of": None,
            "outcome": self.method.outcome(),
            "paid": True,
            "payment_intent": self.payment_intent_id,
            "payment_method": self.payment_method_id,
            "payment_method_details": self.method.charge_details(self.amount, self.mandate),
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": None,
            "refunded": self.refunded,
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded",
            "transfer_data": None,
            "transfer_group": None,
        }
