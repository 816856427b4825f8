"""Line items (``item``) and the ad-hoc ``price`` each one carries, from ``price_data``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id


@dataclass(frozen=True)
class LineItem:
    """One line of a session: a product bought at a price created for this session."""

    name: str
    description: str | None
    images: tuple[str, ...]
    currency: str
    unit_amount: int
    quantity: int
    created: int
    id: str = field(default_factory=lambda: new_id("li_"))
    price_id: str = field(default_factory=lambda: new_id("price_"))
    product_id: str = field(default_factory=lambda: new_id("prod_"))

    @property
    def amount(self) -> int:
        """Unit amount times quantity, before discounts and taxes (there are none)."""
        return self.unit_amount * self.quantity

    def price(self) -> dict[str, Any]:
        """The ``price``; one made from ``price_data`` is inactive and one-time."""
        return {
            "id": self.price_id,
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "created": self.created,
            "currency": self.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": self.product_id,
            "recurring": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": str(self.unit_amount),
        }

    def to_stripe(self) -> dict[str, Any]:
        """The ``item`` object; its description is the product's name, as Checkout sets it."""
        return {
            "id": self.id,
            "object": "item",
            "adjustable_quantity": None,
            "amount_discount": 0,
            "amount_subtotal": self.amount,
            "amount_tax": 0,
            "amount_total": self.amount,
            "currency": self.currency,
            "description": self.name,
            "metadata": {},
            "price": self.price(),
            "quantity": self.quantity,
        }
