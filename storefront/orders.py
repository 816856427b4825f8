"""Orders: the state machine and what an order is; no I/O.

Nothing here imports Quart, Stripe or a database: the rules are plain Python
that unit tests run without I/O, and every store (``storefront.store``) calls
them. The queries that read and move orders live in the stores.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class OrderStatus(StrEnum):
    """Where an order stands."""

    PENDING = "pending"  # waiting for the shopper to pay
    PROCESSING = "processing"  # checkout completed, a delayed payment is settling
    PAID = "paid"
    FAILED = "failed"  # the delayed payment failed
    EXPIRED = "expired"  # the session expired or the shopper cancelled
    REFUNDED = "refunded"
    ABORTED = "aborted"  # checkout could not start (Stripe unreachable)

    @property
    def is_final(self) -> bool:
        """True when nothing more is expected without the shopkeeper acting."""
        return self not in (OrderStatus.PENDING, OrderStatus.PROCESSING)

    @property
    def is_settled(self) -> bool:
        """True when Stripe has confirmed the money: there is nothing left to ask it."""
        return self in (OrderStatus.PAID, OrderStatus.REFUNDED)


class Fulfilment(StrEnum):
    """Whether the goods went out; tracked apart from payment."""

    UNFULFILLED = "unfulfilled"
    SHIPPED = "shipped"  # physical goods handed to the carrier
    DELIVERED = "delivered"  # digital goods made available


# Each status lists the statuses it may be reached from. Anything else is a
# late or duplicated event and changes nothing: orders only move forward.
_S = OrderStatus
PREDECESSORS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING: frozenset(),
    _S.PROCESSING: frozenset({_S.PENDING}),
    _S.PAID: frozenset({_S.PENDING, _S.PROCESSING}),
    _S.FAILED: frozenset({_S.PENDING, _S.PROCESSING}),
    _S.EXPIRED: frozenset({_S.PENDING}),
    _S.ABORTED: frozenset({_S.PENDING}),
    # A refund can only follow a payment; if its event overtakes the payment's,
    # it still wins, since Stripe's final truth is "refunded".
    _S.REFUNDED: frozenset({_S.PENDING, _S.PROCESSING, _S.PAID}),
}

# Stripe's evidence that money was taken wins over an order we had given up on
# (aborted while its checkout was in flight, expired while the shopper paid):
# such moves are allowed, but they flag the order for the shopkeeper.
RECOVERIES: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    _S.PAID: frozenset({_S.ABORTED, _S.EXPIRED, _S.FAILED}),
    _S.PROCESSING: frozenset({_S.ABORTED, _S.EXPIRED}),
    _S.REFUNDED: frozenset({_S.ABORTED, _S.EXPIRED, _S.FAILED}),
}


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    """Whether an order in ``current`` may move to ``new``."""
    return current in PREDECESSORS[new] or is_recovery(current, new)


def is_recovery(current: OrderStatus, new: OrderStatus) -> bool:
    """Whether moving ``current`` to ``new`` overrules us with Stripe's word (flags it)."""
    return current in RECOVERIES.get(new, frozenset())


def next_status(current: OrderStatus, new: OrderStatus | None) -> OrderStatus:
    """The status after applying ``new`` to an order in ``current``."""
    if new is not None and can_transition(current, new):
        return new
    return current


@dataclass(frozen=True)
class Order:
    """One purchase, as the receipt shows it."""

    id: int
    token: str
    product_id: int
    product_name: str
    product_slug: str
    quantity: int
    amount_total: int
    currency: str
    status: OrderStatus
    stripe_session_id: str | None
    customer_email: str | None
    created_at: str
    updated_at: str
    expires_at: int | None = None
    payment_intent: str | None = None
    flag_reason: str | None = None
    flagged_at: str | None = None
    amount_refunded: int = 0
    fulfilment: Fulfilment = Fulfilment.UNFULFILLED
    tracking_note: str | None = None
    fulfilled_at: str | None = None
    order_number: str | None = None
    # What we asked for, then what Stripe says was paid (None until it says).
    amount_subtotal: int | None = None
    amount_discount: int | None = None
    amount_shipping: int | None = None
    amount_tax: int | None = None
    amount_paid: int | None = None
    shipping_name: str | None = None
    shipping_address: Mapping[str, Any] | None = None
    cart_id: int | None = None

    @property
    def charged(self) -> int:
        """The total: Stripe's once it said, else what we asked for."""
        return self.amount_paid if self.amount_paid is not None else self.amount_total

    @property
    def flagged(self) -> bool:
        """Whether the shopkeeper must look at this order."""
        return self.flagged_at is not None

    @property
    def partially_refunded(self) -> bool:
        """Paid, with part of the money given back (a partial refund keeps it paid)."""
        return self.status is OrderStatus.PAID and 0 < self.amount_refunded < self.charged

    @property
    def refundable(self) -> int:
        """What may still be refunded (minor units)."""
        if self.status is not OrderStatus.PAID:
            return 0
        return max(self.charged - self.amount_refunded, 0)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Order:
        return cls(
            id=row["id"],
            token=row["token"],
            product_id=row["product_id"],
            product_name=row["product_name"],
            product_slug=row["product_slug"],
            quantity=row["quantity"],
            amount_total=row["amount_total"],
            currency=row["currency"],
            status=OrderStatus(row["status"]),
            stripe_session_id=row["stripe_session_id"],
            customer_email=row["customer_email"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            expires_at=row["expires_at"],
            payment_intent=row["payment_intent"],
            flag_reason=row["flag_reason"],
            flagged_at=row["flagged_at"],
            amount_refunded=_column(row, "amount_refunded", 0),
            fulfilment=Fulfilment(_column(row, "fulfilment", Fulfilment.UNFULFILLED)),
            tracking_note=_column(row, "tracking_note", None),
            fulfilled_at=_column(row, "fulfilled_at", None),
            **_extra(row),
        )


def _column(row: Mapping[str, Any], key: str, default: Any) -> Any:
    # Back-office columns (migration 0004) may be absent from a store's select.
    try:
        return row[key]
    except (IndexError, KeyError):
        return default


_EXTRA = (
    "order_number",
    "amount_subtotal",
    "amount_discount",
    "amount_shipping",
    "amount_tax",
    "amount_paid",
    "shipping_name",
    "cart_id",
)


def _extra(row: Mapping[str, Any]) -> dict[str, Any]:
    # Columns of revision 0003: a row from an older query simply lacks them.
    keys = set(row.keys())  # type: ignore[attr-defined]
    extra = {key: row[key] for key in _EXTRA if key in keys}
    address = row["shipping_address"] if "shipping_address" in keys else None
    extra["shipping_address"] = json.loads(address) if address else None
    return extra


@dataclass(frozen=True)
class TimelineEntry:
    """One applied transition."""

    status: OrderStatus
    source: str
    created_at: str
    note: str | None = None


def new_token() -> str:
    """An unguessable public order token (192 bits)."""
    return secrets.token_urlsafe(24)


def timestamp(at: float | None = None) -> str:
    """UTC as the schema stores it (``2026-01-31T12:00:00.000Z``), now or at unix ``at``.

    Computed here rather than in SQL so every backend writes the same text,
    which sorts and compares in time order.
    """
    when = dt.datetime.fromtimestamp(time.time() if at is None else at, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Move:
    """A transition that happened; ``flag`` says why it needs the shopkeeper, if it does."""

    before: OrderStatus
    after: OrderStatus
    flag: str | None = None
