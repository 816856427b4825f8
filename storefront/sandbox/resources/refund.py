"""Refunds: a succeeded return of part or all of a charge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id


@dataclass(frozen=True)
class Refund:
    """A refund; the sandbox's refunds succeed at once, as card refunds in test mode do."""

    amount: int
    charge_id: str
    payment_intent_id: str
    payment_method_id: str
    currency: str
    created: int
    metadata: dict[str, str]
    reason: str | None
    id: str = field(default_factory=lambda: new_id("re_"))
    balance_transaction: str = field(default_factory=lambda: new_id("txn_"))

    def to_stripe(self) -> dict[str, Any]:
        """The complete ``refund`` object."""
        return {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": self.balance_transaction,
            "charge": self.charge_id,
            "created": self.created,
            "currency": self.currency,
            "customer": None,
            "customer_account": None,
            "metadata": dict(self.metadata),
            "payment_intent": self.payment_intent_id,
            "payment_method": self.payment_method_id,
            "reason": self.reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
