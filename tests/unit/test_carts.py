"""Cart rules: quantities, tokens, order numbers, a cart's sums (no I/O)."""

from __future__ import annotations

import re

import pytest

from storefront.carts import (
    MAX_QUANTITY,
    Cart,
    CartLine,
    QuantityError,
    is_cart_token,
    new_cart_token,
    new_order_number,
    parse_quantity,
)


@pytest.mark.parametrize("raw", ["1", " 7 ", "99"])
def test_good_quantities(raw: str) -> None:
    assert parse_quantity(raw) == int(raw)


@pytest.mark.parametrize(
    "raw", [None, "", "0", "-1", "1.0", "1e2", "½", "٣", "100", "1_0", "9" * 7, "0x10"]
)
def test_bad_quantities(raw: str | None) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(raw)


def test_the_maximum_is_documented_in_the_message() -> None:
    with pytest.raises(QuantityError, match=str(MAX_QUANTITY)):
        parse_quantity(str(MAX_QUANTITY + 1))


def test_tokens_and_numbers() -> None:
    assert is_cart_token(new_cart_token())
    assert not is_cart_token(None) and not is_cart_token("short")
    assert not is_cart_token("a" * 31 + "!")
    numbers = {new_order_number() for _ in range(200)}
    assert len(numbers) == 200
    assert all(re.fullmatch(r"[2-9A-HJ-KM-NP-Z]{3}-[2-9A-HJ-KM-NP-Z]{5}", n) for n in numbers)


def line(slug: str, amount: int, quantity: int, currency: str = "eur", **kw: object) -> CartLine:
    return CartLine(
        product_id=len(slug),
        slug=slug,
        name=slug,
        description="",
        unit_amount=amount,
        currency=currency,
        quantity=quantity,
        physical=bool(kw.get("physical", False)),
        available=kw.get("available"),  # type: ignore[arg-type]
    )


def test_a_cart_sums_its_lines_and_knows_when_it_ships_or_mixes() -> None:
    cart = Cart((line("mug", 1800, 2, physical=True), line("ebook", 900, 1)))
    assert (cart.count, cart.subtotal, cart.currency, cart.physical, cart.mixed) == (
        3,
        4500,
        "eur",
        True,
        False,
    )
    mixed = Cart((line("mug", 1800, 1), line("poster", 3500, 1, "usd")))
    assert mixed.mixed and mixed.currency is None
    assert line("mug", 1800, 3, available=2).short and not line("mug", 1800, 2, available=2).short
