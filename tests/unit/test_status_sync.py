"""When a receipt may ask Stripe: the poll's and the success page's shared budget."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from storefront.orders import OrderStatus
from storefront.receipts import StatusSyncLimiter

NOW = 1_800_000_000.0


def order(
    status: OrderStatus = OrderStatus.PENDING,
    updated_ago: float = 0.0,
    session: str | None = "cs_1",
    order_id: int = 1,
) -> Any:
    # Only what the limiter reads; the real Order has more fields.
    updated = dt.datetime.fromtimestamp(NOW - updated_ago, dt.UTC)
    return SimpleNamespace(
        id=order_id,
        status=status,
        stripe_session_id=session,
        updated_at=updated.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )


def test_the_success_page_asks_at_once_then_waits_out_the_interval() -> None:
    limiter = StatusSyncLimiter(30)
    fresh = order(updated_ago=0)
    assert limiter.allow(fresh, NOW, returning=True)
    assert not limiter.allow(fresh, NOW + 1, returning=True)
    assert not limiter.allow(fresh, NOW + 29.9, returning=True)
    assert limiter.allow(fresh, NOW + 30, returning=True)


def test_polls_wait_for_a_quiet_order_and_share_the_slot_with_the_success_page() -> None:
    limiter = StatusSyncLimiter(30)
    assert not limiter.allow(order(updated_ago=10), NOW)  # too fresh for a poll
    assert limiter.allow(order(updated_ago=0), NOW, returning=True)
    assert not limiter.allow(order(updated_ago=40), NOW + 5)  # the page just asked
    assert limiter.allow(order(updated_ago=70), NOW + 30)


def test_with_interval_zero_polls_never_ask_and_the_success_page_once() -> None:
    limiter = StatusSyncLimiter(0)
    assert not limiter.allow(order(updated_ago=10_000), NOW)
    assert limiter.allow(order(), NOW, returning=True)
    assert not limiter.allow(order(), NOW + 86_400, returning=True)
    assert limiter.allow(order(order_id=2), NOW, returning=True)  # per order


def test_settled_orders_and_orders_without_a_session_never_ask() -> None:
    limiter = StatusSyncLimiter(30)
    for status in (OrderStatus.PAID, OrderStatus.REFUNDED):
        assert not limiter.allow(order(status=status, updated_ago=100), NOW)
        assert not limiter.allow(order(status=status), NOW, returning=True)
    assert not limiter.allow(order(session=None), NOW, returning=True)


def test_a_given_up_order_is_asked_about_only_by_the_success_page() -> None:
    # Polls stop at a final order; a shopper back from paying may prove it was paid.
    limiter = StatusSyncLimiter(30)
    for order_id, status in enumerate((OrderStatus.EXPIRED, OrderStatus.ABORTED), start=1):
        given_up = order(order_id=order_id, status=status, updated_ago=100)
        assert not limiter.allow(given_up, NOW)
        assert limiter.allow(given_up, NOW, returning=True)


def test_memory_is_bounded() -> None:
    limiter = StatusSyncLimiter(30, capacity=2)
    assert limiter.allow(order(order_id=1), NOW, returning=True)
    assert limiter.allow(order(order_id=2), NOW, returning=True)
    assert not limiter.allow(order(order_id=3), NOW, returning=True)  # full
    assert limiter.allow(order(order_id=3), NOW + 31, returning=True)  # old slots freed


def test_due_says_what_allow_would_without_taking_the_slot() -> None:
    limiter = StatusSyncLimiter(30, capacity=1)
    quiet = order(updated_ago=60)
    # The fast path only looks; the slot stays for the request Quart then serves.
    assert limiter.due(quiet, NOW) and limiter.due(quiet, NOW)
    assert limiter.allow(quiet, NOW)
    assert not limiter.due(quiet, NOW + 1) and not limiter.allow(quiet, NOW + 1)
    # Full (capacity 1): another order is not due until the first slot's window is over.
    other = order(updated_ago=60, order_id=2)
    assert not limiter.due(other, NOW + 1) and not limiter.allow(other, NOW + 1)
    assert limiter.due(other, NOW + 30) and limiter.allow(other, NOW + 30)
    assert not limiter.due(order(OrderStatus.PAID, updated_ago=60, order_id=3), NOW + 90)
