"""Chaos over real HTTP: 200 purchases, duplicated, shuffled and dropped webhooks, a SIGKILL.

Two aggressive reconcilers (every second, threshold 0 s) run throughout: the
shop's own, and one beside it as `storefront reconcile` would run. At the end
the money invariant holds: every paid session has its paid order, and no more.
The same run goes on SQLite and on PostgreSQL (one shop process on each).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from pathlib import Path

import pytest

from storefront.config import Settings
from storefront.fulfilment import ReconcileReport, reconcile
from storefront.payments import StripePayments
from storefront.serving import BackgroundServer, free_port
from storefront.store import make_store
from tests.reliability.chaos import (
    Instance,
    Shopper,
    Tally,
    chaos_sandbox,
    kill_line,
    publish,
    purchases_with_a_kill,
    seed_products,
    shop_env,
    shoppers_http,
)

PURCHASES = 200
SHOPPERS = 16


class Reconciler:
    """A reconciler beside the shop, as `storefront reconcile` runs: every second, threshold 0."""

    def __init__(self, env: dict[str, str]):
        self.settings = Settings.from_env(env)
        self.totals = ReconcileReport()
        self.passes = 0
        self.failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        db = make_store(self.settings)
        payments = StripePayments.from_settings(self.settings)
        await db.open()
        await payments.open()
        try:
            while not stop.is_set():
                try:
                    report = await reconcile(db, payments, older_than=0)
                except Exception:  # a locked database or Stripe down: try the next pass
                    self.failures += 1
                else:
                    self.passes += 1
                    for name, value in dataclasses.asdict(report).items():
                        setattr(self.totals, name, getattr(self.totals, name) + value)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            await payments.close()
            await db.close()


async def test_chaos_every_order_paid_exactly_once(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str, database_url: str | None
) -> None:
    started = time.monotonic()
    database = tmp_path / "shop.sqlite3"
    # The shop's database: the fresh PostgreSQL one, else the SQLite file.
    location = database_url or database

    shop_port, sandbox_port = free_port(), free_port()
    shop_url, sandbox_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{sandbox_port}"
    sandbox_app = chaos_sandbox(sandbox_url, f"{shop_url}/webhook", seed=20261)
    sandbox = sandbox_app.extensions["sandbox"]
    env = shop_env(
        sandbox_url,
        shop_url,
        {"STOREFRONT_DATABASE": str(database), "STOREFRONT_DATABASE_URL": database_url or ""},
    )
    await seed_products(env)
    shop = Instance("shop", env, tmp_path, port=shop_port)
    reconciler, stop_reconciling = Reconciler(env), asyncio.Event()

    async with BackgroundServer(sandbox_app, port=sandbox_port), shoppers_http() as http:
        await shop.start()
        beside = asyncio.create_task(reconciler.run(stop_reconciling))
        try:
            shopper = Shopper(http, shop_url)
            session_ids, kill = await purchases_with_a_kill(
                shopper, PURCHASES, SHOPPERS, shop, sandbox, pause=0.3
            )
            await sandbox.wait_idle(40)
        finally:
            stop_reconciling.set()
            await beside
            await shop.kill()

    tally = Tally.read(location, sandbox, session_ids)
    attempts = [a for ds in sandbox.deliverer.deliveries.values() for d in ds for a in d.attempts]
    # Attempts the dead shop refused, and ones cut off mid-request by the kill.
    errors = Counter(
        (a.error or "").split(":")[0] for a in attempts if a.status is None and a.error
    )
    errors.pop("dropped by the sandbox (drop_first_rate)", None)
    totals = reconciler.totals

    publish(
        request,
        f"chaos figures ({backend})",
        [
            f"backend {backend}; purchases {PURCHASES}, shoppers {SHOPPERS}, "
            f"checkout retries {shopper.checkout_retries}",
            kill_line(shop, kill),
            tally.deliveries_line(),
            f"attempts that met the dead shop: {dict(errors)}",
            f"shop answers {dict(sorted(shopper.shop_statuses.items()))}",
            tally.orders_line(),
            f"reconciler beside the shop (1 s, threshold 0 s): {reconciler.passes} passes "
            f"({reconciler.failures} failed), {totals.checked} orders checked, "
            f"{totals.changed} changed, {totals.in_flight} left in flight, "
            f"{totals.aborted} aborted, {totals.expired} expired, {totals.flagged} flagged",
            f"paid by: {dict(tally.paid_by)}",
            tally.money.figures(),
            f"took {time.monotonic() - started:.1f} s",
        ],
    )

    # Every purchase is one order, paid exactly once; the money invariant holds.
    tally.assert_each_paid_once(PURCHASES, kill)
    # The reconcilers ran and aborted, expired and flagged nothing.
    assert totals.aborted == totals.expired == totals.flagged == 0
    assert reconciler.passes > 0 and totals.checked > 0
    assert {o["stripe_session_id"] for o in tally.orders} == set(session_ids)
    assert tally.sandbox_sessions == PURCHASES
    # The shop really was down for a while, and never answered 5xx.
    assert tally.stats["retries"] > 0
    assert sum(errors.values()) > 0
    assert not [s for s in shopper.shop_statuses if s >= 500]
