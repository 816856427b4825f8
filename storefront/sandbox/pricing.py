"""A session's arithmetic: subtotal, discount spread over the lines, shipping, tax, total.

Pure integer arithmetic in minor units, no framework imports. Rounding is half up, per
line, as Stripe rounds each line's tax and discount share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Discounting:
    """A coupon's terms: a percentage off, or a fixed amount off the whole order."""

    percent_off: Fraction | None = None
    amount_off: int | None = None


@dataclass(frozen=True)
class PricedLine:
    """One line's amounts once discount and tax are applied."""

    subtotal: int
    discount: int
    tax: int
    inclusive: bool

    @property
    def taxable(self) -> int:
        """What tax is computed on: the discounted amount, without exclusive tax."""
        net = self.subtotal - self.discount
        return net - self.tax if self.inclusive else net

    @property
    def total(self) -> int:
        """What the line costs: inclusive tax is already in the price, exclusive is added."""
        return self.subtotal - self.discount + (0 if self.inclusive else self.tax)


@dataclass(frozen=True)
class Totals:
    """The whole session's amounts."""

    lines: tuple[PricedLine, ...]
    shipping: PricedLine

    @property
    def subtotal(self) -> int:
        """The sum of the lines before discount (and with inclusive tax in it)."""
        return sum(line.subtotal for line in self.lines)

    @property
    def discount(self) -> int:
        """The discount on the lines."""
        return sum(line.discount for line in self.lines)

    @property
    def tax(self) -> int:
        """All tax, inclusive and exclusive, on the lines and on shipping."""
        return sum(line.tax for line in self.lines) + self.shipping.tax

    @property
    def exclusive_tax(self) -> int:
        """The tax added on top of the prices."""
        return sum(line.tax for line in (*self.lines, self.shipping) if not line.inclusive)

    @property
    def total(self) -> int:
        """What the shopper pays: the lines' totals plus shipping with its tax."""
        return sum(line.total for line in self.lines) + self.shipping.total


def round_half_up(value: Fraction) -> int:
    """Round a non-negative amount to whole minor units, halves up."""
    return int(value + Fraction(1, 2))


def discount_amount(subtotal: int, terms: Discounting | None) -> int:
    """The order's discount: a percentage of it, or a fixed amount capped at it."""
    if terms is None or subtotal <= 0:
        return 0
    if terms.percent_off is not None:
        return min(subtotal, round_half_up(subtotal * terms.percent_off / 100))
    return min(subtotal, terms.amount_off or 0)


def spread(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over lines in proportion to ``weights`` (largest remainders first)."""
    whole = sum(weights)
    if whole <= 0:
        return [0 for _ in weights]
    exact = [Fraction(total * weight, whole) for weight in weights]
    shares = [int(part) for part in exact]
    left = total - sum(shares)
    # The lines with the largest fractions get the leftover units, earlier lines first.
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for index in order[:left]:
        shares[index] += 1
    return shares


def tax_on(amount: int, percentage: Fraction | None, inclusive: bool) -> int:
    """Tax on an amount: added on top, or the part of an inclusive price that is tax."""
    if not percentage or amount <= 0:
        return 0
    if inclusive:
        return amount - round_half_up(amount * 100 / (100 + percentage))
    return round_half_up(amount * percentage / 100)


def price_session(
    lines: Sequence[tuple[int, bool]],
    discount: Discounting | None = None,
    shipping: int = 0,
    shipping_inclusive: bool = False,
    percentage: Fraction | None = None,
) -> Totals:
    """Price a session: ``lines`` are (amount before discount, tax-inclusive price?) pairs."""
    amounts = [amount for amount, _ in lines]
    shares = spread(discount_amount(sum(amounts), discount), amounts)
    priced = tuple(
        PricedLine(amount, share, tax_on(amount - share, percentage, inclusive), inclusive)
        for (amount, inclusive), share in zip(lines, shares, strict=True)
    )
    shipping_line = PricedLine(
        shipping, 0, tax_on(shipping, percentage, shipping_inclusive), shipping_inclusive
    )
    return Totals(priced, shipping_line)
