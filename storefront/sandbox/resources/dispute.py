"""Disputes: a cardholder's bank pulls back (part of) a charge until the case is decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id
from .charge import Charge

# Reasons the pinned version lists for a dispute.
REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
# Visa's reason codes for the usual reasons; other reasons carry none.
VISA_REASON_CODES = {
    "fraudulent": "10.4",
    "product_not_received": "13.1",
    "product_unacceptable": "13.3",
    "duplicate": "12.6.1",
    "credit_not_processed": "13.6",
}
# Stripe's dispute fee (15.00 in the charge's currency here: the sandbox has no rates).
DISPUTE_FEE = 1500
# Days the merchant has to answer before the evidence is due.
EVIDENCE_DAYS = 21
CLOSED = ("won", "lost")


def balance_transaction(
    amount: int, fee: int, currency: str, now: int, source: str, description: str, category: str
) -> dict[str, Any]:
    """A complete ``balance_transaction`` moving a dispute's money (an ``adjustment``)."""
    fee_details = []
    if fee:
        fee_details.append(
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": "Dispute fee",
                "type": "stripe_fee",
            }
        )
    return {
        "id": new_id("txn_"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": now,
        "balance_type": "payments",
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": category,
        "source": source,
        "status": "available",
        "type": "adjustment",
    }


def _evidence() -> dict[str, Any]:
    """Evidence with nothing submitted yet."""
    names = [
        "access_activity_log",
        "billing_address",
        "cancellation_policy",
        "cancellation_policy_disclosure",
        "cancellation_rebuttal",
        "customer_communication",
        "customer_email_address",
        "customer_name",
        "customer_purchase_ip",
        "customer_signature",
        "duplicate_charge_documentation",
        "duplicate_charge_explanation",
        "duplicate_charge_id",
        "product_description",
        "receipt",
        "refund_policy",
        "refund_policy_disclosure",
        "refund_refusal_explanation",
        "service_date",
        "service_documentation",
        "shipping_address",
        "shipping_carrier",
        "shipping_date",
        "shipping_documentation",
        "shipping_tracking_number",
        "uncategorized_file",
        "uncategorized_text",
    ]
    evidence: dict[str, Any] = dict.fromkeys(names)
    evidence["appeal"] = None
    evidence["enhanced_evidence"] = dict.fromkeys(
        ("mastercard_compliance", "visa_compelling_evidence_3", "visa_compliance")
    )
    return evidence


@dataclass
class Dispute:
    """A chargeback on a charge: opened ``needs_response``, closed ``won`` or ``lost``."""

    charge: Charge
    amount: int
    reason: str
    created: int
    status: str = "needs_response"
    balance_transactions: list[dict[str, Any]] = field(default_factory=list)
    id: str = field(default_factory=lambda: new_id("du_"))

    def withdraw(self, now: int) -> dict[str, Any]:
        """Take the disputed amount and the fee from the balance (``funds_withdrawn``)."""
        txn = balance_transaction(
            -self.amount,
            DISPUTE_FEE,
            self.charge.currency,
            now,
            self.id,
            f"Chargeback withdrawal for {self.charge.id}",
            "dispute",
        )
        self.balance_transactions.append(txn)
        return txn

    def close(self, outcome: str, now: int) -> dict[str, Any] | None:
        """Decide the case; a won one gives the amount back (``funds_reinstated``)."""
        self.status = outcome
        if outcome != "won":
            return None
        txn = balance_transaction(
            self.amount,
            0,
            self.charge.currency,
            now,
            self.id,
            f"Chargeback reversal for {self.charge.id}",
            "dispute_reversal",
        )
        self.balance_transactions.append(txn)
        return txn

    def _method_details(self) -> dict[str, Any] | None:
        """The card network's view of the case; the pinned version has none for debits."""
        method = self.charge.method
        if method.type != "card":
            return None
        card = {
            "brand": method.brand,
            "case_type": "chargeback",
            "network": method.brand,
            "network_reason_code": VISA_REASON_CODES.get(self.reason)
            if method.brand == "visa"
            else None,
        }
        return {"type": "card", "card": card}

    def to_stripe(self) -> dict[str, Any]:
        """The complete ``dispute``."""
        details = self._method_details()
        return {
            "id": self.id,
            "object": "dispute",
            "amount": self.amount,
            "balance_transactions": [dict(txn) for txn in self.balance_transactions],
            "charge": self.charge.id,
            "created": self.created,
            "currency": self.charge.currency,
            "enhanced_eligibility_types": [],
            "evidence": _evidence(),
            "evidence_details": {
                "due_by": self.created + EVIDENCE_DAYS * 86400,
                "enhanced_eligibility": dict.fromkeys(
                    ("mastercard_compliance", "visa_compelling_evidence_3", "visa_compliance")
                ),
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
                "submission_method": "not_submitted",
            },
            "intended_submission_method": None,
            # A chargeback's payment can no longer be refunded: the bank already took it back.
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "network_reason_code": details["card"]["network_reason_code"] if details else None,
            "payment_intent": self.charge.payment_intent_id,
            "payment_method_details": details,
            "reason": self.reason,
            "status": self.status,
        }
