"""Refunds, disputes and undelivered events over real HTTP: back office, sandbox, webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.admin.live_support import Staff, eventually, paid_order
from tests.live import LiveStack, buy
from tests.money import assert_money_invariant


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[LiveStack]:
    async with LiveStack(tmp_path / "shop.sqlite3") as live:
        yield live
        assert_money_invariant(live.database, live.sandbox_state)


@pytest.fixture
async def staff(stack: LiveStack) -> AsyncIterator[Staff]:
    signed_in = await Staff.sign_in(stack)
    yield signed_in
    await signed_in.close()


async def refunded(stack: LiveStack, token: str, amount: int) -> bool:
    return (await stack.order(token))["amount_refunded"] == amount


async def test_a_partial_then_a_full_refund_reach_the_order_through_webhooks(
    stack: LiveStack, http: aiohttp.ClientSession, staff: Staff
) -> None:
    order = await paid_order(http, stack)
    token, total = order["token"], order["amount_total"]
    status, location = await staff.refund(order["id"], "5.00")
    assert status == 303 and "refund=re_" in location, location
    # Only Stripe's charge.refunded moves the order: a partial refund keeps it paid.
    await eventually(lambda: refunded(stack, token, 500))
    assert (await stack.order(token))["status"] == "paid"
    page = await staff.get(f"/admin/orders/{order['id']}")
    assert "partially refunded" in page and "€5.00" in page
    listed = await staff.get("/admin/?status=partially_refunded")
    assert f"#{order['id']}<" in listed

    status, _ = await staff.refund(order["id"])  # empty amount: all that is left
    assert status == 303
    await stack.wait_for_status(token, "refunded")
    assert await refunded(stack, token, total)
    assert [r.amount for r in stack.sandbox_state.refunds()] == [total - 500, 500]
    log = await staff.get("/admin/webhooks")
    assert log.count("charge.refunded") == 2 and "applied" in log


async def test_a_double_clicked_refund_refunds_once(
    stack: LiveStack, http: aiohttp.ClientSession, staff: Staff
) -> None:
    order = await paid_order(http, stack)
    page = await staff.get(f"/admin/orders/{order['id']}")
    attempt = page.split('name="attempt" value="', 1)[1].split('"', 1)[0]
    form = {"amount": "2.00", "attempt": attempt}
    first = await staff.post(f"/admin/orders/{order['id']}/refund", form)
    second = await staff.post(f"/admin/orders/{order['id']}/refund", form)
    assert first == second and first[0] == 303
    await eventually(lambda: refunded(stack, order["token"], 200))
    assert len(stack.sandbox_state.refunds()) == 1


async def test_bad_refund_amounts_are_refused_and_refund_nothing(
    stack: LiveStack, http: aiohttp.ClientSession, staff: Staff
) -> None:
    order = await paid_order(http, stack)
    for amount in ("abc", "-1", "0", "18.01", "1.001"):
        status, body = await staff.refund(order["id"], amount)
        assert status == 400 and "Refund refused" in body, amount
    assert stack.sandbox_state.refunds() == []


async def test_a_refund_made_in_the_dashboard_shows_up_the_same_way(
    stack: LiveStack, http: aiohttp.ClientSession, staff: Staff
) -> None:
    order = await paid_order(http, stack)
    url = f"{stack.sandbox_url}/_sandbox/sessions/{order['stripe_session_id']}/refund"
    async with http.post(url, data={"amount": "300"}) as answer:
        assert answer.status == 200
    await eventually(lambda: refunded(stack, order["token"], 300))
    page = await staff.get(f"/admin/orders/{order['id']}")
    assert "partially refunded" in page and "€3.00" in page
    async with http.post(url) as answer:  # the rest, as the Dashboard would
        assert answer.status == 200
    await stack.wait_for_status(order["token"], "refunded")


async def test_a_dispute_flags_the_order_and_shows_on_its_page(
    stack: LiveStack, http: aiohttp.ClientSession, staff: Staff
) -> None:
    order = await paid_order(http, stack, card="4000 0000 0000 0259")

    async def flagged() -> bool:
        return (await stack.order(order["token"]))["flag_reason"] is not None

    await eventually(flagged)
    row = await stack.db.fetch_one("SELECT * FROM disputes WHERE order_id = ?", (order["id"],))
    assert row is not None and row["amount"] == order["amount_total"]
    page = await staff.get(f"/admin/orders/{order['id']}")
    assert row["id"] in page and "charge.dispute.created" in page and "⚑" in page
    url = f"{stack.sandbox_url}/_sandbox/disputes/{row['id']}/close"
    async with http.post(url, data={"outcome": "lost"}) as answer:
        assert answer.status == 200

    async def lost() -> bool:
        found = await stack.db.fetch_one("SELECT status FROM disputes WHERE id = ?", (row["id"],))
        return found is not None and found["status"] == "lost"

    await eventually(lost)
    assert "flagged" in await staff.get("/admin/?status=flagged")
    notices = await stack.db.fetch_all(
        "SELECT dedupe_key FROM outbox WHERE kind = 'dispute_notice' ORDER BY id"
    )
    assert [n["dedupe_key"] for n in notices] == [
        f"dispute:{row['id']}:needs_response",
        f"dispute:{row['id']}:lost",
    ]


async def test_an_event_stripe_could_not_deliver_is_applied_from_the_webhook_log(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    # No retries for a minute: the event stays undelivered while the shop is down.
    async with LiveStack(tmp_path / "shop.sqlite3", retry_schedule=(60.0,)) as stack:
        staff = await Staff.sign_in(stack)
        try:
            token, pay_url = await buy(http, stack, "enamel-mug")
            session_id = pay_url.rsplit("/", 1)[-1]
            await stack.stop_shop()
            url = f"{stack.sandbox_url}/_sandbox/sessions/{session_id}/complete"
            async with http.post(url) as answer:
                assert answer.status == 200
            await stack.start_shop()
            assert (await stack.order(token))["status"] == "pending"
            log = await staff.get("/admin/webhooks")
            event_id = log.split("/admin/webhooks/", 1)[1].split("/apply", 1)[0]
            status, location = await staff.post(f"/admin/webhooks/{event_id}/apply", {})
            assert status == 303 and "result=applied" in location
            assert (await stack.order(token))["status"] == "paid"
            assert "received" in await staff.get("/admin/webhooks")
        finally:
            await staff.close()
        assert_money_invariant(stack.database, stack.sandbox_state)


async def test_check_with_stripe_now_applies_a_payment_whose_webhook_never_came(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with LiveStack(tmp_path / "shop.sqlite3", retry_schedule=(60.0,)) as stack:
        staff = await Staff.sign_in(stack)
        try:
            token, pay_url = await buy(http, stack, "enamel-mug")
            await stack.stop_shop()
            url = f"{stack.sandbox_url}/_sandbox/sessions/{pay_url.rsplit('/', 1)[-1]}/complete"
            async with http.post(url) as answer:
                assert answer.status == 200
            await stack.start_shop()
            order = await stack.order(token)
            assert order["status"] == "pending"
            status, _ = await staff.post(f"/admin/orders/{order['id']}/check", {})
            assert status == 303
            assert (await stack.order(token))["status"] == "paid"
            assert "paid · back office" in await staff.get(f"/admin/orders/{order['id']}")
        finally:
            await staff.close()
        assert_money_invariant(stack.database, stack.sandbox_state)
