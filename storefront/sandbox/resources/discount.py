"""A discount applied to one session: a coupon, reached directly or through a code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id
from .coupon import Coupon
from .promotion_code import PromotionCode


@dataclass(frozen=True)
class AppliedDiscount:
    """The ``discount`` object a session's lines and breakdown point at."""

    coupon: Coupon
    promotion_code: PromotionCode | None
    session_id: str
    start: int
    id: str = field(default_factory=lambda: new_id("di_"))

    def redeem(self) -> None:
        """The session completed: count the redemption on the coupon and the code."""
        self.coupon.times_redeemed += 1
        if self.promotion_code is not None:
            self.promotion_code.times_redeemed += 1

    def reference(self) -> dict[str, Any]:
        """The session's ``discounts[]`` entry."""
        return {
            "coupon": None if self.promotion_code else self.coupon.id,
            "promotion_code": self.promotion_code.id if self.promotion_code else None,
        }

    def to_stripe(self) -> dict[str, Any]:
        """The complete ``discount``."""
        return {
            "id": self.id,
            "object": "discount",
            "checkout_session": self.session_id,
            "customer": None,
            "customer_account": None,
            "end": None,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": self.promotion_code.id if self.promotion_code else None,
            "source": {"coupon": self.coupon.id, "type": "coupon"},
            "start": self.start,
            "subscription": None,
            "subscription_item": None,
        }
