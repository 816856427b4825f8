"""Stripe's line items: read as plain data, and held to the order's lines and the totals."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from storefront.evidence import EventOutcome
from storefront.orders import OrderStatus
from storefront.paid_lines import LineAmounts, line_amounts, lines_mismatch

OURS = [
    {"name": "Mug", "quantity": 2, "unit_amount": 1800},
    {"name": "Tote", "quantity": 1, "unit_amount": 2400},
]
# 10 % off, 19 % tax added on each line after its discount, shipping 500 taxed 95.
LINES = (LineAmounts(2, 3600, 360, 616, 3856), LineAmounts(1, 2400, 240, 410, 2570))
PAID = EventOutcome(
    status=OrderStatus.PAID,
    amount=3856 + 2570 + 500 + 95,
    currency="eur",
    subtotal=6000,
    discount=600,
    shipping=500,
    tax=616 + 410 + 95,
    lines=LINES,
)


def item(**fields: Any) -> dict[str, Any]:
    return {
        "object": "item",
        "quantity": 2,
        "amount_subtotal": 3600,
        "amount_discount": 360,
        "amount_tax": 616,
        "amount_total": 3856,
        "description": "Mug",
        **fields,
    }


def test_line_items_are_read_from_a_complete_list_or_its_data() -> None:
    assert line_amounts({"object": "list", "data": [item()], "has_more": False}) == (
        LineAmounts(2, 3600, 360, 616, 3856, "Mug"),
    )
    assert line_amounts([item()]) == (LineAmounts(2, 3600, 360, 616, 3856, "Mug"),)


@pytest.mark.parametrize(
    "items",
    [
        None,
        {"data": [item()], "has_more": True},  # the first page only: says nothing
        {"data": [item()]},
        {"data": [], "has_more": False},
        [item(amount_tax=None)],
        [item(amount_total="3856")],
        [item(quantity=True)],
        ["item"],
    ],
)
def test_incomplete_or_malformed_line_items_say_nothing(items: object) -> None:
    assert line_amounts(items) == ()


def test_lines_that_fit_the_order_and_the_totals_pass() -> None:
    assert lines_mismatch(OURS, PAID) is None
    # Tax inside the prices: line totals do not add it, nor does the session's total.
    inclusive = (LineAmounts(2, 3600, 360, 517, 3240), LineAmounts(1, 2400, 240, 345, 2160))
    session = dataclasses.replace(
        PAID, lines=inclusive, tax=517 + 345 + 80, amount=3240 + 2160 + 500, tax_exclusive=False
    )
    assert lines_mismatch(OURS, session) is None


@pytest.mark.parametrize(
    ("lines", "changes", "says"),
    [
        (LINES[:1], {}, "1 line items for an order of 2"),
        ((LineAmounts(3, 5400, 360, 616, 5656), LINES[1]), {}, "prices 3 for 5400"),
        ((LineAmounts(2, 3600, 360, 616, 9999), LINES[1]), {}, "not its own parts"),
        ((LineAmounts(2, 3600, -1, 616, 4217), LINES[1]), {}, "negative or oversized"),
        ((LineAmounts(2, 3600, 300, 616, 3916), LINES[1]), {}, "do not add up"),
        (LINES, {"amount": PAID.amount + 1}, "totals do not add up"),
        (LINES, {"tax": 1000}, "totals do not add up"),
    ],
)
def test_lines_that_do_not_fit_are_refused(
    lines: tuple[LineAmounts, ...], changes: dict[str, int], says: str
) -> None:
    reason = lines_mismatch(OURS, dataclasses.replace(PAID, lines=lines, **changes))
    assert reason is not None and says in reason
