"""The money invariant itself can fail: each way of breaking it is caught (no I/O)."""

from __future__ import annotations

from typing import Any

from tests.money import check_money


def order(i: int, status: str, session: str | None, flagged: bool = False) -> dict[str, Any]:
    return {
        "id": i,
        "token": f"tok{i}",
        "status": status,
        "stripe_session_id": session,
        "flagged_at": "2026-01-01T00:00:00Z" if flagged else None,
    }


def session(sid: str, token: str, payment_status: str) -> dict[str, Any]:
    return {"id": sid, "client_reference_id": token, "payment_status": payment_status}


def test_agreeing_orders_and_sessions_hold() -> None:
    check = check_money(
        [
            order(1, "paid", "cs_1"),
            order(2, "refunded", "cs_2"),
            order(3, "aborted", None, flagged=True),
            order(4, "expired", "cs_4"),
        ],
        [
            session("cs_1", "tok1", "paid"),
            session("cs_2", "tok2", "paid"),
            session("cs_3", "tok3", "paid"),  # paid for an order given up on: flagged
            session("cs_4", "tok4", "unpaid"),
        ],
    )
    assert check.violations == []
    assert (check.paid_sessions, check.paid_orders, check.refunded_orders) == (3, 1, 1)
    assert check.flagged_orders == 1


def test_a_paid_session_behind_an_unflagged_unpaid_order_breaks_it() -> None:
    check = check_money([order(1, "aborted", None)], [session("cs_1", "tok1", "paid")])
    assert check.violations == ["session cs_1 is paid but order 1 is aborted and not flagged"]


def test_a_paid_session_without_any_order_breaks_it() -> None:
    check = check_money([], [session("cs_1", "tok1", "paid")])
    assert check.violations == ["session cs_1 is paid but has no order"]


def test_a_paid_order_without_a_paid_session_breaks_it() -> None:
    check = check_money([order(1, "paid", "cs_1")], [session("cs_1", "tok1", "unpaid")])
    assert check.violations == ["order 1 is paid without a paid session"]


def test_a_cart_order_recording_another_total_than_stripe_charged_is_caught() -> None:
    paid = session("cs_1", "tok1", "paid") | {"amount_total": 12710}
    right = order(1, "paid", "cs_1") | {"amount_paid": 12710}
    assert check_money([right], [paid]).violations == []
    wrong = order(1, "paid", "cs_1") | {"amount_paid": 10200}
    (violation,) = check_money([wrong], [paid]).violations
    assert "records 10200 paid" in violation
