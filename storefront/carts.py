"""Carts and stock: what a cart holds, quantities a shopper may ask for; no I/O.

Like ``orders``, plain Python: the stores and views call these rules.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The most of one product a cart or a Buy may hold: more is a typo or a script.
MAX_QUANTITY = 99
# The most distinct products in one cart (Stripe takes up to 100 line items).
MAX_LINES = 50
_WHOLE = re.compile(r"^[0-9]{1,6}$")
_CART_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
# Order numbers: no 0/O or 1/I/L, so a number read out over the phone is unambiguous.
_NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class QuantityError(ValueError):
    """A quantity the shop will not take; the message is fit for a shopper."""


def parse_quantity(raw: str | None) -> int:
    """A quantity from a form field, 1..MAX_QUANTITY; QuantityError otherwise."""
    text = (raw or "").strip()
    if not _WHOLE.match(text):
        raise QuantityError("Please enter a whole number of items, such as 1 or 2.")
    value = int(text)
    if value < 1:
        raise QuantityError("The quantity must be at least 1. To take an item out, remove it.")
    if value > MAX_QUANTITY:
        raise QuantityError(f"You can order at most {MAX_QUANTITY} of one product.")
    return value


def new_cart_token() -> str:
    """An unguessable cart cookie value (192 bits, 32 characters)."""
    return secrets.token_urlsafe(24)


def is_cart_token(value: str | None) -> bool:
    """Whether a cookie value could be a cart token at all (anything else is no cart)."""
    return bool(value) and _CART_TOKEN.match(value or "") is not None


def new_order_number() -> str:
    """A short order number shoppers can quote, e.g. ``K7M-4Q2P`` (about 40 bits)."""
    chars = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))
    return f"{chars[:3]}-{chars[3:]}"


def available(stock: int | None, reserved: int, active: object = True) -> int | None:
    """Units that can still be sold: None when unlimited, never below zero, 0 off sale."""
    if not active:
        return 0
    return None if stock is None else max(stock - reserved, 0)


def shipping_offer(amounts: Iterable[int]) -> str:
    """The shipping amounts offered, as an order stores them ('' when none)."""
    return ",".join(str(amount) for amount in sorted(set(amounts)))


@dataclass(frozen=True)
class CartLine:
    """One product in a cart, priced from the database now."""

    product_id: int
    slug: str
    name: str
    description: str
    unit_amount: int
    currency: str
    quantity: int
    physical: bool
    image: str | None = None
    # Units that can still be sold (None: unlimited).
    available: int | None = None

    @property
    def amount(self) -> int:
        """The line's total in minor units."""
        return self.unit_amount * self.quantity

    @property
    def short(self) -> bool:
        """Whether the shop has fewer left than this line asks for."""
        return self.available is not None and self.available < self.quantity

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CartLine:
        stock = row["stock"]
        return cls(
            product_id=row["product_id"],
            slug=row["slug"],
            name=row["name"],
            description=row["description"],
            unit_amount=row["unit_amount"],
            currency=row["currency"],
            quantity=row["quantity"],
            physical=row["kind"] == "physical",
            image=row["image"],
            available=None if stock is None else max(stock - row["reserved"], 0),
        )


@dataclass(frozen=True)
class Cart:
    """A shopper's cart; ``dropped`` names products taken out because they left the shop."""

    lines: tuple[CartLine, ...] = ()
    dropped: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        """How many items, quantities counted."""
        return sum(line.quantity for line in self.lines)

    @property
    def currencies(self) -> set[str]:
        """The currencies the lines are priced in."""
        return {line.currency for line in self.lines}

    @property
    def mixed(self) -> bool:
        """Whether the lines mix currencies (one Checkout Session takes one)."""
        return len(self.currencies) > 1

    @property
    def currency(self) -> str | None:
        """The cart's one currency, if it has exactly one."""
        return next(iter(self.currencies)) if len(self.currencies) == 1 else None

    @property
    def subtotal(self) -> int:
        """The sum of the lines (meaningful only when not mixed)."""
        return sum(line.amount for line in self.lines)

    @property
    def physical(self) -> bool:
        """Whether anything must be shipped."""
        return any(line.physical for line in self.lines)

    @property
    def short(self) -> bool:
        """Whether some line asks for more than is left (checkout would be refused)."""
        return any(line.short for line in self.lines)


@dataclass(frozen=True)
class LineRequest:
    """One order line as checkout asks the store to reserve it."""

    product_id: int
    name: str
    quantity: int
    unit_amount: int


class OutOfStock(Exception):
    """Not enough left for some lines; nothing was reserved."""

    def __init__(self, short: Sequence[tuple[str, int]]):
        super().__init__(", ".join(f"{name}: {left} left" for name, left in short))
        self.short = tuple(short)
