"""Promotion codes: a customer-facing code for a coupon, with its own limits."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id
from .coupon import Coupon


@dataclass
class PromotionCode:
    """A code shoppers type on the payment page; it redeems its coupon."""

    code: str
    coupon: Coupon
    created: int
    active: bool = True
    expires_at: int | None = None
    max_redemptions: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    times_redeemed: int = 0
    id: str = field(default_factory=lambda: new_id("promo_"))

    def usable(self, now: int) -> bool:
        """Active, not expired, redemptions left, and its coupon still valid."""
        if not self.active or (self.expires_at is not None and now >= self.expires_at):
            return False
        if self.max_redemptions is not None and self.times_redeemed >= self.max_redemptions:
            return False
        return self.coupon.valid(now)

    def to_stripe(self) -> dict[str, Any]:
        """The complete ``promotion_code`` in the pinned version's shape (``promotion``)."""
        return {
            "id": self.id,
            "object": "promotion_code",
            "active": self.active,
            "code": self.code,
            "created": self.created,
            "customer": None,
            "customer_account": None,
            "expires_at": self.expires_at,
            "livemode": False,
            "max_redemptions": self.max_redemptions,
            "metadata": dict(self.metadata),
            "promotion": {"coupon": self.coupon.id, "type": "coupon"},
            "restrictions": {
                "currency_options": {},
                "first_time_transaction": False,
                "minimum_amount": None,
                "minimum_amount_currency": None,
            },
            "times_redeemed": self.times_redeemed,
        }


def new_code() -> str:
    """A generated code, as Stripe makes one when ``code`` is left out."""
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8))
