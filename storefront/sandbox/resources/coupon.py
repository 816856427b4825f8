"""Coupons: a percentage or a fixed amount off, with redemption limits."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..pricing import Discounting


def coupon_id() -> str:
    """Stripe's generated coupon ids are eight letters and digits."""
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8))


@dataclass
class Coupon:
    """A coupon; ``times_redeemed`` grows when a session using it completes."""

    created: int
    duration: str
    percent_off: Fraction | None = None
    amount_off: int | None = None
    currency: str | None = None
    name: str | None = None
    max_redemptions: int | None = None
    redeem_by: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    times_redeemed: int = 0
    id: str = field(default_factory=coupon_id)

    def valid(self, now: int) -> bool:
        """Still redeemable: not past ``redeem_by`` and not used up."""
        if self.redeem_by is not None and now >= self.redeem_by:
            return False
        return self.max_redemptions is None or self.times_redeemed < self.max_redemptions

    def applies_to(self, currency: str) -> bool:
        """An amount off works only in its own currency; a percentage in any."""
        return self.amount_off is None or self.currency == currency

    def terms(self) -> Discounting:
        """What the pricing needs to know."""
        return Discounting(percent_off=self.percent_off, amount_off=self.amount_off)

    def to_stripe(self, now: int) -> dict[str, Any]:
        """The complete ``coupon``; ``valid`` as of ``now``."""
        return {
            "id": self.id,
            "object": "coupon",
            "amount_off": self.amount_off,
            "applies_to": None,
            "created": self.created,
            "currency": self.currency,
            "currency_options": None,
            "duration": self.duration,
            "duration_in_months": None,
            "livemode": False,
            "max_redemptions": self.max_redemptions,
            "metadata": dict(self.metadata),
            "name": self.name,
            "percent_off": float(self.percent_off) if self.percent_off is not None else None,
            "redeem_by": self.redeem_by,
            "times_redeemed": self.times_redeemed,
            "valid": self.valid(now),
        }
