"""Prices (``price_``): one-time, per-unit amounts of a product."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id


@dataclass
class Price:
    """A saved one-time price of a product."""

    product: str
    currency: str
    unit_amount: int
    created: int
    tax_behavior: str = "unspecified"
    active: bool = True
    nickname: str | None = None
    lookup_key: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: new_id("price_"))

    def to_stripe(self, product: dict[str, Any] | None = None) -> dict[str, Any]:
        """The complete ``price``, its product expanded when given."""
        return {
            "id": self.id,
            "object": "price",
            "active": self.active,
            "billing_scheme": "per_unit",
            "created": self.created,
            "currency": self.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": self.lookup_key,
            "metadata": dict(self.metadata),
            "nickname": self.nickname,
            "product": product if product is not None else self.product,
            "recurring": None,
            "tax_behavior": self.tax_behavior,
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": str(self.unit_amount),
        }
