"""The receipt's poll schedule and the version a poll compares: plain functions, no I/O."""

from __future__ import annotations

import dataclasses

import pytest

from storefront.orders import OrderStatus, timestamp
from storefront.receipts import Answer, Asked, Poll, decide, order_version, poll_interval
from storefront.store import OrderGlance

NOW = 1_800_000_000.0
S = OrderStatus


@pytest.mark.parametrize(
    ("status", "quiet_for", "every"),
    [
        (S.PENDING, 0, 2),
        (S.PENDING, 299.9, 2),
        (S.PENDING, 300, 10),
        (S.PENDING, 3599.9, 10),
        (S.PENDING, 3600, 60),
        (S.PENDING, 30 * 86400, 60),
        (S.PROCESSING, 0, 2),
        (S.PROCESSING, 59.9, 2),
        (S.PROCESSING, 60, 30),
        (S.PROCESSING, 3599.9, 30),
        (S.PROCESSING, 3600, 300),
        (S.PROCESSING, 30 * 86400, 300),
    ],
)
def test_open_orders_poll_on_the_schedule(status: S, quiet_for: float, every: int) -> None:
    assert poll_interval(status, quiet_for) == every


@pytest.mark.parametrize("status", [s for s in S if s.is_final])
def test_final_orders_stop_polling(status: S) -> None:
    assert poll_interval(status, 0) is None
    assert poll_interval(status, 86400) is None


def glance(**changes: object) -> OrderGlance:
    base = OrderGlance(
        id=1,
        status=S.PENDING,
        stripe_session_id="cs_1",
        updated_at=timestamp(NOW),
        flagged=False,
        amount_refunded=0,
        fulfilment="unfulfilled",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"updated_at": timestamp(NOW + 0.001)},
        {"status": S.PAID},
        {"flagged": True},
        {"amount_refunded": 500},
        {"fulfilment": "shipped"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_the_version_moves_with_each_field_even_within_one_millisecond(
    change: dict[str, object],
) -> None:
    # Two writes in one millisecond share updated_at: the other fields still tell them apart.
    assert order_version(glance(**change)) != order_version(glance())


def test_the_version_ignores_what_the_receipt_does_not_show() -> None:
    assert order_version(glance(id=2, stripe_session_id="cs_2")) == order_version(glance())


def test_poll_of_reads_the_quiet_time_from_updated_at() -> None:
    order = glance(updated_at=timestamp(NOW - 301))
    assert Poll.of(order, "tok", now=NOW) == Poll("tok", order_version(order), 10)
    assert Poll.of(glance(status=S.PAID), "tok", now=NOW).every is None
    # A clock behind the database's still polls as for a fresh order.
    assert Poll.of(glance(updated_at=timestamp(NOW + 60)), "tok", now=NOW).every == 2


def test_decide_is_the_one_set_of_poll_rules() -> None:
    seen = glance()
    shown = Poll.of(seen, "t" * 32, NOW)
    asked = Asked("t" * 32, shown.version, str(shown.every))

    def never(order: object) -> bool:
        return False

    def due(order: object) -> bool:
        return True

    assert decide(asked, seen, never, NOW) == (Answer.UNCHANGED, shown)
    assert decide(asked, seen, due, NOW) == (Answer.ASK_STRIPE, None)
    assert decide(asked, None, never, NOW) == (Answer.NOT_FOUND, None)
    legacy = dataclasses.replace(asked, target="order-status")
    assert decide(legacy, seen, due, NOW) == (Answer.RELOAD, None)
    # htmx names the poller itself as the target: an ordinary poll.
    own = dataclasses.replace(asked, target="order-poll")
    assert decide(own, seen, never, NOW)[0] is Answer.UNCHANGED
    # Quiet past the first step: the same order, a new interval.
    assert decide(asked, seen, never, NOW + 300)[0] is Answer.NEW_INTERVAL
    moved = dataclasses.replace(seen, status=S.PAID)
    assert decide(asked, moved, never, NOW)[0] is Answer.CHANGED
    for version, every in ((None, "2"), (shown.version, None), (shown.version, "02")):
        odd = Asked("t" * 32, version, every)
        assert decide(odd, seen, never, NOW)[0] is not Answer.UNCHANGED
