"""What each line of a paid session cost, as Stripe's line items state it; plain Python.

The order stores each line's discount, tax and total from Stripe's line items
(``amount_discount``, ``amount_tax``, ``amount_total``), once they are checked
against the order's own lines and against the session's totals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storefront.evidence import EventOutcome


@dataclass(frozen=True)
class LineAmounts:
    """One of a session's line items as Stripe priced it (minor units)."""

    quantity: int
    subtotal: int
    discount: int
    tax: int
    total: int
    description: str | None = None


def line_amounts(items: object) -> tuple[LineAmounts, ...]:
    """A session's line items (a list object, or its ``data``); () if absent or malformed.

    A list with ``has_more`` is incomplete, so it says nothing either.
    """
    if isinstance(items, Mapping):
        if items.get("has_more") is not False:
            return ()
        items = items.get("data")
    if not isinstance(items, list) or not items:
        return ()
    lines = []
    for item in items:
        if not isinstance(item, Mapping):
            return ()
        fields = [_int(item, key) for key in _LINE_FIELDS]
        if None in fields:
            return ()
        quantity, subtotal, discount, tax, total = fields
        lines.append(
            LineAmounts(quantity, subtotal, discount, tax, total, _text(item, "description"))  # type: ignore[arg-type]
        )
    return tuple(lines)


_LINE_FIELDS = ("quantity", "amount_subtotal", "amount_discount", "amount_tax", "amount_total")


def lines_mismatch(ordered: Sequence[Mapping[str, Any]], outcome: EventOutcome) -> str | None:
    """Why Stripe's line items do not fit the order's lines and totals, or None.

    Checked in order (Stripe keeps the order we sent them in): the same count,
    quantities and subtotals as our lines; each line's own arithmetic; and the
    lines adding up to the session's subtotal, discount and total (what is
    left of the tax and the total once the lines are summed is shipping's).
    """
    lines = outcome.lines
    if len(lines) != len(ordered):
        return f"has {len(lines)} line items for an order of {len(ordered)} lines"
    for line, ours in zip(lines, ordered, strict=True):
        if (line.quantity, line.subtotal) != (
            ours["quantity"],
            ours["unit_amount"] * ours["quantity"],
        ):
            asked = ours["unit_amount"] * ours["quantity"]
            return (
                f"prices {line.quantity} for {line.subtotal} where the order has "
                f"{ours['quantity']} of {ours['name']} for {asked}"
            )
        if min(line.discount, line.tax) < 0 or line.discount > line.subtotal:
            return "states a negative or oversized line discount or tax"
        if line.total not in (
            line.subtotal - line.discount + line.tax,
            line.subtotal - line.discount,
        ):
            return f"has a line whose total {line.total} is not its own parts"
    parts = (outcome.subtotal, outcome.discount, outcome.shipping, outcome.tax, outcome.amount)
    if None in parts:
        return None
    subtotal, discount, shipping, tax, amount = parts  # type: ignore[misc]
    line_tax = sum(x.tax for x in lines)
    if sum(x.subtotal for x in lines) != subtotal or sum(x.discount for x in lines) != discount:
        return "has line items whose subtotals or discounts do not add up to the session's"
    shipping_tax = tax - line_tax if outcome.tax_exclusive else 0
    if line_tax > tax or sum(x.total for x in lines) + shipping + shipping_tax != amount:
        return "has line items whose totals do not add up to the session's total"
    return None


def _int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    # bool is an int in Python; a signed "true" is not an amount.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None
