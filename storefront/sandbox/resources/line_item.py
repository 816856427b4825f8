"""Line items (``item``) and the ad-hoc ``price`` each one carries, from ``price_data``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id
from ..pricing import PricedLine


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
    tax_behavior: str = "unspecified"
    # The saved price's JSON when the line named one (``line_items[n][price]``).
    saved_price: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def inclusive(self) -> bool:
        """True when the unit amount already includes tax."""
        return self.tax_behavior == "inclusive"

    @property
    def amount(self) -> int:
        """Unit amount times quantity, before discounts (and exclusive taxes)."""
        return self.unit_amount * self.quantity

    def price(self) -> dict[str, Any]:
        """The ``price``: the saved one, or an inactive one-time price from ``price_data``."""
        if self.saved_price is not None:
            return dict(self.saved_price)
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
            "tax_behavior": self.tax_behavior,
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": str(self.unit_amount),
        }

    def to_stripe(
        self,
        priced: PricedLine | None = None,
        discounts: list[dict[str, Any]] | None = None,
        taxes: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The ``item``; its description is the product's name, as Checkout sets it."""
        priced = priced or PricedLine(self.amount, 0, 0, self.inclusive)
        obj = {
            "id": self.id,
            "object": "item",
            "adjustable_quantity": None,
            "amount_discount": priced.discount,
            "amount_subtotal": priced.subtotal,
            "amount_tax": priced.tax,
            "amount_total": priced.total,
            "currency": self.currency,
            "description": self.name,
            "metadata": {},
            "price": self.price(),
            "quantity": self.quantity,
        }
        # Stripe includes these only when expanded; then even an empty list is sent.
        if discounts is not None:
            obj["discounts"] = discounts
        if taxes is not None:
            obj["taxes"] = taxes
        return obj
