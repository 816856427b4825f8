"""The session arithmetic, for any cart: totals add up, shares are fair, nothing goes negative."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from storefront.sandbox.pricing import (
    Discounting,
    discount_amount,
    price_session,
    spread,
    tax_on,
)
from storefront.sandbox.resources.tax import RATE_TABLE

lines = st.lists(st.tuples(st.integers(0, 500_000), st.booleans()), min_size=1, max_size=8)
percentages = st.sampled_from([None, *(rate.percentage for rate in RATE_TABLE.values())])
discounts = st.one_of(
    st.none(),
    st.builds(
        Discounting,
        percent_off=st.fractions(Fraction(1, 100), 100).map(lambda f: round(f, 2)),
    ),
    st.builds(Discounting, amount_off=st.integers(1, 1_000_000)),
)


@given(lines, discounts, st.integers(0, 10_000), st.booleans(), percentages)
def test_the_totals_add_up(
    cart: list[tuple[int, bool]],
    discount: Discounting | None,
    shipping: int,
    shipping_inclusive: bool,
    percentage: Fraction | None,
) -> None:
    totals = price_session(cart, discount, shipping, shipping_inclusive, percentage)
    assert totals.subtotal == sum(amount for amount, _ in cart)
    assert totals.discount == discount_amount(totals.subtotal, discount)
    # amount_total = subtotal - discount + shipping + the tax added on top of prices.
    assert totals.total == (
        totals.subtotal - totals.discount + totals.shipping.subtotal + totals.exclusive_tax
    )
    assert totals.total == sum(line.total for line in totals.lines) + totals.shipping.total
    assert totals.tax == sum(line.tax for line in totals.lines) + totals.shipping.tax
    for line in totals.lines:
        assert 0 <= line.discount <= line.subtotal
        assert line.tax >= 0 and line.taxable >= 0
        assert line.total == line.subtotal - line.discount + (0 if line.inclusive else line.tax)
    if all(not inclusive for _, inclusive in cart) and not shipping_inclusive:
        assert totals.total == totals.subtotal - totals.discount + shipping + totals.tax
    if percentage is None:
        assert totals.tax == 0


@given(st.integers(0, 10**7), st.lists(st.integers(0, 10**6), min_size=1, max_size=10))
def test_a_discount_is_spread_in_proportion_and_in_full(total: int, weights: list[int]) -> None:
    total = min(total, sum(weights))
    shares = spread(total, weights)
    assert sum(shares) == (total if sum(weights) else 0)
    for share, weight in zip(shares, weights, strict=True):
        assert 0 <= share <= weight
        # Each share is within one unit of its exact proportion.
        if sum(weights):
            assert abs(share - Fraction(total * weight, sum(weights))) < 1


@given(st.integers(0, 10**7), st.sampled_from([r.percentage for r in RATE_TABLE.values()]))
def test_inclusive_tax_is_the_part_of_the_price_that_is_tax(
    amount: int, percentage: Fraction
) -> None:
    inclusive = tax_on(amount, percentage, inclusive=True)
    net = amount - inclusive
    # Adding exclusive tax to the net lands within a unit of the inclusive price.
    assert abs(net + tax_on(net, percentage, inclusive=False) - amount) <= 1


def test_rounding_is_half_up_per_line() -> None:
    assert tax_on(250, Fraction(19), inclusive=False) == 48  # 47.5
    assert discount_amount(1999, Discounting(percent_off=Fraction(25, 2))) == 250  # 249.875
    assert discount_amount(300, Discounting(amount_off=500)) == 300
    assert spread(10, [1, 1, 1]) == [4, 3, 3]
