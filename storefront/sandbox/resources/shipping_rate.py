"""Shipping rates (``shr_``): a fixed amount with a name and an optional delivery estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id


@dataclass
class ShippingRate:
    """A ``fixed_amount`` shipping rate, saved or made from ``shipping_rate_data``."""

    display_name: str
    amount: int
    currency: str
    created: int
    delivery_estimate: dict[str, Any] | None = None
    tax_behavior: str = "unspecified"
    metadata: dict[str, str] = field(default_factory=dict)
    active: bool = True
    id: str = field(default_factory=lambda: new_id("shr_"))

    @property
    def inclusive(self) -> bool:
        """True when the amount already includes tax."""
        return self.tax_behavior == "inclusive"

    def to_stripe(self) -> dict[str, Any]:
        """The complete ``shipping_rate``."""
        return {
            "id": self.id,
            "object": "shipping_rate",
            "active": self.active,
            "created": self.created,
            "delivery_estimate": self.delivery_estimate,
            "display_name": self.display_name,
            "fixed_amount": {"amount": self.amount, "currency": self.currency},
            "livemode": False,
            "metadata": dict(self.metadata),
            "tax_behavior": self.tax_behavior,
            "tax_code": None,
            "type": "fixed_amount",
        }
