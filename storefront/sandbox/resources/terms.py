"""What a session asks for beyond its lines, as its create call set it."""

from __future__ import annotations

from dataclasses import dataclass

from .coupon import Coupon
from .promotion_code import PromotionCode
from .shipping_rate import ShippingRate


@dataclass(frozen=True)
class CommerceTerms:
    """Allowed shipping countries, shipping rates, tax, promotion codes, a set discount."""

    shipping_countries: tuple[str, ...] | None = None
    shipping_options: tuple[ShippingRate, ...] = ()
    automatic_tax: bool = False
    allow_promotion_codes: bool | None = None
    coupon: Coupon | None = None
    promotion_code: PromotionCode | None = None
