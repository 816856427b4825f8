"""Stripe's line items come from the line-items task, never on the webhook's answer path.

The store's due state and the task's passes on each backend (a SQLite file, a
PostgreSQL database), with a hand-written gateway that only lists line items;
then the shop and the sandbox over real HTTP with the sandbox slowed down: the
webhook answers at once, and the lines arrive afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import stripe

from storefront import evidence
from storefront.carts import LineRequest
from storefront.catalog import NewProduct, read_products_file
from storefront.cli import main
from storefront.evidence import EventOutcome, EventResult
from storefront.line_items import LineItemsTask, record_due
from storefront.orders import OrderStatus
from storefront.paid_lines import LineAmounts
from storefront.payments import PaymentError
from storefront.store import make_store
from storefront.store.postgres import PostgresStore
from storefront.store.sqlite import SQLiteStore
from tests.integration.test_cart_journey import SHOP_ENV
from tests.integration.test_paid_amounts import (
    assert_lines_are_stripes,
    check_out,
    complete,
    promotion,
    rate,
)
from tests.live import ROOT, SECRET, LiveStack, live_database_url
from tests.money import assert_money_invariant

AnyStore = SQLiteStore | PostgresStore

# Two mugs and one e-book: 10 % off, 19 % tax on each line after its discount.
LINES = (LineAmounts(2, 3600, 360, 616, 3856), LineAmounts(1, 900, 90, 154, 964))
PAID = EventOutcome(
    status=OrderStatus.PAID,
    amount=3856 + 964,
    currency="eur",
    subtotal=4500,
    discount=450,
    shipping=0,
    tax=770,
)


class LineItemsOnly:
    """Stripe as far as line items go: a session's lines, or the failures told."""

    def __init__(self, lines: tuple[LineAmounts, ...] = LINES) -> None:
        self.lines = lines
        self.calls: list[str] = []
        self.failures: list[PaymentError] = []

    async def line_items(self, session_id: str) -> tuple[LineAmounts, ...]:
        self.calls.append(session_id)
        if self.failures:
            raise self.failures.pop(0)
        return self.lines


OUTAGE = PaymentError("APIConnectionError: Stripe unreachable")
MISSING = PaymentError("no such session", http_status=404, code="resource_missing")


@pytest.fixture
async def store(tmp_path: Path, database_url: str | None) -> AsyncIterator[AnyStore]:
    if database_url:
        db: AnyStore = PostgresStore(database_url)
    else:
        db = SQLiteStore(tmp_path / "store.sqlite3")
    await db.open()
    await db.save_products(
        [
            NewProduct("mug", "Mug", 1800, "eur", physical=True),
            NewProduct("ebook", "E-book", 900, "eur"),
        ]
    )
    try:
        yield db
    finally:
        await db.close()


async def paid_order(store: AnyStore, session_id: str, paid: EventOutcome = PAID) -> int:
    """Two mugs and an e-book, paid as a webhook leaves it: moved, no line items."""
    product = {r["slug"]: r["id"] for r in await store.fetch_all("SELECT id, slug FROM products")}
    lines = [
        LineRequest(product["mug"], "Mug", 2, 1800),
        LineRequest(product["ebook"], "E-book", 1, 900),
    ]
    order = await store.open_lines_order(lines, "eur", None, expires_at=int(time.time()) + 3600)
    if paid.status is not OrderStatus.PENDING:
        outcome = dataclasses.replace(paid, session_id=session_id)
        assert (await store.apply_outcome(order.id, outcome, "webhook"))[2]
    return order.id


async def due(store: AnyStore, **kwargs: object) -> list[int]:
    return [order.id for order in await store.line_items_due(**kwargs)]  # type: ignore[arg-type]


async def stored(store: AnyStore, order_id: int) -> list[tuple[int, int, int]]:
    rows = await store.fetch_all(
        "SELECT amount_discount, amount_tax, amount_total FROM order_lines"
        " WHERE order_id = ? ORDER BY id",
        (order_id,),
    )
    return [(r["amount_discount"], r["amount_tax"], r["amount_total"]) for r in rows]


async def test_an_order_left_due_by_a_crash_is_recorded_by_the_next_sweep(
    store: AnyStore,
) -> None:
    # The webhook committed the move and answered; the shop died before the call.
    left = await paid_order(store, "cs_left")
    # Without discount or tax the move priced each line itself: nothing is due.
    plain = await paid_order(
        store, "cs_plain", dataclasses.replace(PAID, amount=4500, discount=0, tax=0)
    )
    pending = await paid_order(store, "cs_open", EventOutcome(status=OrderStatus.PENDING))
    # An order paid before revision 0005 never had its lines priced: not asked about.
    old = await paid_order(store, "cs_old")
    await store.execute("UPDATE orders SET shipping_offered = NULL WHERE id = ?", (old,))
    assert await due(store) == [left]
    assert await due(store, order_ids=[plain, pending, left]) == [left]
    assert await due(store, order_ids=[]) == []
    assert await due(store, after_id=left) == []

    stripe_ = LineItemsOnly()
    report = await record_due(store, stripe_)  # type: ignore[arg-type]
    assert (report.recorded, report.failed, report.flagged) == (1, 0, 0)
    assert stripe_.calls == ["cs_left"]
    assert await stored(store, left) == [(360, 616, 3856), (90, 154, 964)]
    assert await stored(store, plain) == [(0, 0, 3600), (0, 0, 900)]
    assert await due(store) == []
    # Nothing is left due, so a later pass asks Stripe nothing.
    await record_due(store, stripe_)  # type: ignore[arg-type]
    assert stripe_.calls == ["cs_left"]


async def test_a_failed_look_up_leaves_the_order_due_and_is_logged_once(
    store: AnyStore, caplog: pytest.LogCaptureFixture
) -> None:
    order_id = await paid_order(store, "cs_slow")
    stripe_ = LineItemsOnly()
    stripe_.failures = [OUTAGE, OUTAGE]
    warned: set[int] = set()
    with caplog.at_level(logging.DEBUG, logger="storefront.line_items"):
        for _ in range(2):
            report = await record_due(store, stripe_, warned=warned)  # type: ignore[arg-type]
            assert (report.recorded, report.failed) == (0, 1)
            assert await due(store) == [order_id]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"order_id={order_id}" in warnings[0].getMessage()
    assert await stored(store, order_id) == [(None, None, None), (None, None, None)]
    # Stripe answers again: the next pass records them.
    report = await record_due(store, stripe_, warned=warned)  # type: ignore[arg-type]
    assert report.recorded == 1 and await due(store) == []
    assert await stored(store, order_id) == [(360, 616, 3856), (90, 154, 964)]
    assert stripe_.calls == ["cs_slow"] * 3
    order = await store.order_by_id(order_id)
    assert order is not None and order.flag_reason is None


async def test_a_flagged_order_is_not_asked_about_again(store: AnyStore) -> None:
    refused = await paid_order(store, "cs_refused")
    missing = await paid_order(store, "cs_missing")
    # One line item for an order of two: refused, flagged for a person to look.
    stripe_ = LineItemsOnly(LINES[:1])
    report = await record_due(store, stripe_, order_ids=[refused])  # type: ignore[arg-type]
    assert report.flagged == 1
    # Stripe has no such session: asking again cannot help either.
    stripe_.failures = [MISSING]
    report = await record_due(store, stripe_, order_ids=[missing])  # type: ignore[arg-type]
    assert report.flagged == 1
    for order_id, reason in ((refused, "line items refused"), (missing, "has no session")):
        order = await store.order_by_id(order_id)
        assert order is not None and order.status is OrderStatus.PAID
        assert order.flag_reason is not None and reason in order.flag_reason
        assert await stored(store, order_id) == [(None, None, None), (None, None, None)]
    assert await due(store) == []
    await record_due(store, stripe_)  # type: ignore[arg-type]
    assert stripe_.calls == ["cs_refused", "cs_missing"]


async def test_an_order_refunded_before_its_lines_came_still_gets_them(store: AnyStore) -> None:
    order_id = await paid_order(store, "cs_refunded")
    assert await store.transition(order_id, OrderStatus.REFUNDED, source="test")
    assert await due(store) == [order_id]
    report = await record_due(store, LineItemsOnly())  # type: ignore[arg-type]
    assert report.recorded == 1
    assert await stored(store, order_id) == [(360, 616, 3856), (90, 154, 964)]


async def test_the_task_sweeps_at_start_and_fetches_an_order_it_is_told_of(
    store: AnyStore,
) -> None:
    before = await paid_order(store, "cs_before")
    stripe_ = LineItemsOnly()
    task = LineItemsTask(store, stripe_, interval=3600)  # type: ignore[arg-type]
    async with running(task):
        await wait_for_lines(store, before)
        later = await paid_order(store, "cs_later")
        task.due(later)  # what the webhook does once its move is committed
        await wait_for_lines(store, later)
        assert stripe_.calls == ["cs_before", "cs_later"]


async def test_with_no_sweeps_the_task_fetches_only_the_orders_it_is_told_of(
    store: AnyStore,
) -> None:
    left = await paid_order(store, "cs_left")
    stripe_ = LineItemsOnly()
    task = LineItemsTask(store, stripe_, interval=0)  # type: ignore[arg-type]
    async with running(task):
        told = await paid_order(store, "cs_told")
        task.due(told)
        await wait_for_lines(store, told)
        await asyncio.sleep(0.2)
        assert stripe_.calls == ["cs_told"]
        assert await due(store) == [left]  # left for `storefront reconcile`, or a sweep


@contextlib.asynccontextmanager
async def running(task: LineItemsTask) -> AsyncIterator[None]:
    """The task running for the block, then cancelled as the app's shutdown does."""
    loop = asyncio.create_task(task.run_forever())
    try:
        yield
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop


async def wait_for_lines(store: AnyStore, order_id: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (await stored(store, order_id))[0][2] is None:
        assert time.monotonic() < deadline, f"order {order_id}'s lines were never recorded"
        await asyncio.sleep(0.02)


# Every Stripe call takes this long; the webhook must answer well within it.
LATENCY_MS = 2500


@pytest.fixture(params=["sqlite", "postgresql"])
def live_url(request: pytest.FixtureRequest) -> str | None:
    """A LiveStack's backend: a fresh PostgreSQL database, or None for a SQLite file."""
    return live_database_url(request)


@pytest.fixture
async def slow_stack(live_url: str | None, tmp_path: Path) -> AsyncIterator[LiveStack]:
    """Stripe slow to answer, and its own deliveries dropped: the test delivers."""
    async with LiveStack(
        tmp_path / "shop.sqlite3",
        database_url=live_url,
        shop_env=SHOP_ENV,
        latency_ms=LATENCY_MS,
        drop_first_rate=1.0,
        retry_schedule=(),
    ) as live:
        products = read_products_file(ROOT / "data" / "products.toml")
        await live.db.save_products([dataclasses.replace(p, physical=True) for p in products])
        yield live
        assert_money_invariant(live.location, live.sandbox_state)


async def test_the_webhook_answers_without_waiting_on_stripe_for_line_items(
    slow_stack: LiveStack,
) -> None:
    await promotion(slow_stack)
    session_id, token = await check_out(slow_stack, **{"enamel-mug": 2, "canvas-tote": 1})
    await complete(
        slow_stack,
        session_id,
        shipping_rate=rate(slow_stack, session_id, 500),
        promotion_code="TENOFF",
    )
    event = next(
        e
        for e in slow_stack.sandbox_state.events.values()
        if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] == session_id
    )
    assert event["data"]["object"]["total_details"]["amount_discount"] > 0
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET, int(time.time()))
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{slow_stack.shop_url}/webhook",
            data=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        ) as response,
    ):
        answer = await response.json()
    took = time.monotonic() - started
    assert response.status == 200 and answer["result"] == "applied"
    assert took < LATENCY_MS / 1000 / 2, f"the webhook took {took:.2f} s"
    assert (await slow_stack.order(token))["status"] == "paid"
    # The task asks Stripe afterwards, and stores what each line cost.
    await assert_lines_are_stripes(slow_stack, token, session_id)


async def test_storefront_reconcile_records_line_items_a_stopped_shop_left_due(
    live_url: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with LiveStack(
        tmp_path / "shop.sqlite3",
        database_url=live_url,
        shop_env=SHOP_ENV,
        drop_first_rate=1.0,
        retry_schedule=(),
    ) as live:
        products = read_products_file(ROOT / "data" / "products.toml")
        await live.db.save_products([dataclasses.replace(p, physical=True) for p in products])
        await promotion(live)
        session_id, token = await check_out(live, **{"enamel-mug": 2, "canvas-tote": 1})
        await complete(
            live, session_id, shipping_rate=rate(live, session_id, 500), promotion_code="TENOFF"
        )
        await live.stop_shop()
        # The webhook's move committed, then the shop stopped before asking for the lines.
        event = next(
            e
            for e in live.sandbox_state.events.values()
            if e["type"] == "checkout.session.completed"
        )
        outcome = evidence.outcome_from_event(event["type"], event["data"]["object"])
        settings = live.shop_settings()
        db = make_store(settings)
        await db.open()
        try:
            result, _, _ = await db.record_and_apply(event["id"], event["type"], outcome)
            assert result is EventResult.APPLIED
            assert len(await db.line_items_due()) == 1
        finally:
            await db.close()
        env = {
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "STRIPE_API_BASE": live.sandbox_url,
            "STOREFRONT_BASE_URL": live.shop_url,
            "STOREFRONT_DATABASE": str(live.database),
            "STOREFRONT_DATABASE_URL": live.database_url or "",
            **SHOP_ENV,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert await asyncio.to_thread(main, ["reconcile"]) == 0
        assert "line items: 1 orders recorded, 0 flagged" in capsys.readouterr().out
        await live.start_shop()
        await assert_lines_are_stripes(live, token, session_id)
