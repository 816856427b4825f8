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
import os
import secrets
import signal
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.rows import dict_row

from storefront.catalog import read_products_file
from storefront.config import Settings
from storefront.fulfilment import ReconcileReport, reconcile
from storefront.payments import StripePayments
from storefront.sandbox import SandboxSettings, create_sandbox_app
from storefront.serving import BackgroundServer, free_port, wait_until_listening
from storefront.store import make_store
from tests.live import CARD, SECRET, STRICT_VERSION
from tests.money import check_money, read_orders, sandbox_sessions
from tests.reliability.conftest import CHAOS_FIGURES

ROOT = Path(__file__).resolve().parents[2]
HYPERCORN = Path(sys.executable).parent / "hypercorn"
PURCHASES = 200
SHOPPERS = 16
KILL_AFTER = 70  # purchases paid before the shop is killed
SLUGS = ("enamel-mug", "dotted-notebook", "canvas-tote", "mountain-poster")
# Long enough to outlive the restart; short enough to keep the test brisk.
RETRIES = (0.5, 1.0, 1.0, 2.0, 3.0, 5.0, 8.0)


class ShopProcess:
    """The shop under Hypercorn in its own process, so it can be SIGKILLed."""

    def __init__(self, port: int, env: dict[str, str], log: Path):
        self.port = port
        self.env = env
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                str(HYPERCORN),
                "storefront:create_app()",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "0",  # serve in this very process: the pid we kill is the server
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=out,
            )
        await wait_until_listening("127.0.0.1", self.port, within=20)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        self.proc = None


class Shopper:
    """Drives purchases like shoppers would: retry the same form when the shop is gone."""

    def __init__(self, http: aiohttp.ClientSession, shop_url: str):
        self.http = http
        self.shop_url = shop_url
        self.paid = 0
        self.checkout_retries = 0
        self.shop_statuses: Counter[int] = Counter()
        self.enough_paid = asyncio.Event()

    async def checkout(self, slug: str) -> str:
        # The same form (same attempt nonce) submitted again after a failure.
        form = {"attempt": secrets.token_urlsafe(16)}
        for _ in range(200):
            try:
                async with self.http.post(
                    f"{self.shop_url}/checkout/{slug}",
                    data=form,
                    headers={"HX-Request": "true"},
                    allow_redirects=False,
                ) as response:
                    self.shop_statuses[response.status] += 1
                    if response.status == 204:
                        return response.headers["HX-Redirect"]
            except aiohttp.ClientError:
                pass
            self.checkout_retries += 1
            await asyncio.sleep(0.1)
        raise AssertionError("checkout never succeeded")

    async def purchase(self, n: int) -> str:
        pay_url = await self.checkout(SLUGS[n % len(SLUGS)])
        async with self.http.post(f"{pay_url}/card", data=CARD, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
            success_url = response.headers["Location"]
        self.paid += 1
        if self.paid >= KILL_AFTER:
            self.enough_paid.set()
        if n % 2:
            # Half the shoppers come back to the success page; some find the shop down.
            try:
                async with self.http.get(success_url) as page:
                    self.shop_statuses[page.status] += 1
            except aiohttp.ClientError:
                pass
        return pay_url.rsplit("/", 1)[-1]


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


def read_all(location: Path | str, sql: str) -> list[dict[str, Any]]:
    """Rows of the shop's database (SQLite file or PostgreSQL URL), read-only."""
    if str(location).startswith("postgresql://"):
        with psycopg.connect(str(location), row_factory=dict_row) as pg:
            return list(pg.execute(sql))
    conn = sqlite3.connect(f"file:{location}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


async def test_chaos_every_order_paid_exactly_once(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str, database_url: str | None
) -> None:
    started = time.monotonic()
    database = tmp_path / "shop.sqlite3"
    # The shop's database: the fresh PostgreSQL one, else the SQLite file.
    location = database_url or database

    shop_port, sandbox_port = free_port(), free_port()
    shop_url, sandbox_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{sandbox_port}"
    sandbox_app = create_sandbox_app(
        SandboxSettings(
            public_url=sandbox_url,
            webhook_url=f"{shop_url}/webhook",
            webhook_secret=SECRET,
            duplicate_rate=0.3,
            shuffle_window=8,
            shuffle_max_wait=0.1,
            drop_first_rate=0.3,
            retry_schedule=RETRIES,
            delivery_timeout=5.0,
            seed=20261,
            **STRICT_VERSION,
        )
    )
    sandbox = sandbox_app.extensions["sandbox"]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "STOREFRONT_"))},
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_API_BASE": sandbox_url,
        "STOREFRONT_BASE_URL": shop_url,
        "STOREFRONT_DATABASE": str(database),
        "STOREFRONT_DATABASE_URL": database_url or "",
        # The shop's own reconciler, as aggressive as it gets.
        "STOREFRONT_RECONCILE_INTERVAL": "1",
        "STOREFRONT_RECONCILE_AFTER": "0",
        # 200 purchases from one address on purpose.
        "STOREFRONT_CHECKOUT_RATE_LIMIT": "0",
    }
    db = make_store(Settings.from_env(env), create=True)
    await db.open()
    await db.save_products(read_products_file(ROOT / "data" / "products.toml"))
    await db.close()
    shop = ShopProcess(shop_port, env, tmp_path / "shop.log")
    reconciler, stop_reconciling = Reconciler(env), asyncio.Event()

    async with BackgroundServer(sandbox_app, port=sandbox_port), aiohttp.ClientSession() as http:
        await shop.start()
        beside = asyncio.create_task(reconciler.run(stop_reconciling))
        try:
            shopper = Shopper(http, shop_url)
            gate = asyncio.Semaphore(SHOPPERS)

            async def one(n: int) -> str:
                async with gate:
                    return await shopper.purchase(n)

            async def kill_and_restart() -> dict[str, Any]:
                await shopper.enough_paid.wait()
                busy = sandbox.deliverer.busy
                await shop.kill()
                await asyncio.sleep(0.3)
                await shop.start()
                return {"paid_at_kill": shopper.paid, "deliveries_in_flight": busy}

            *session_ids, kill = await asyncio.gather(
                *(one(n) for n in range(PURCHASES)), kill_and_restart()
            )
            await sandbox.wait_idle(40)
        finally:
            stop_reconciling.set()
            await beside
            await shop.kill()
        money = check_money(read_orders(location), sandbox_sessions(sandbox))

    orders = read_all(location, "SELECT * FROM orders ORDER BY id")
    timeline = read_all(location, "SELECT * FROM order_events ORDER BY id")
    seen = read_all(location, "SELECT * FROM webhook_events")
    stats = dict(sandbox.stats)
    attempts = [a for ds in sandbox.deliverer.deliveries.values() for d in ds for a in d.attempts]
    # Attempts the dead shop refused, and ones cut off mid-request by the kill.
    errors = Counter(
        (a.error or "").split(":")[0] for a in attempts if a.status is None and a.error
    )
    errors.pop("dropped by the sandbox (drop_first_rate)", None)
    statuses = Counter(o["status"] for o in orders)
    per_order: dict[int, list[str]] = {}
    for entry in timeline:
        per_order.setdefault(entry["order_id"], []).append(entry["status"])
    paid_by = Counter(e["source"] for e in timeline if e["status"] == "paid")
    totals = reconciler.totals

    figures = [
        f"backend {backend}; purchases {PURCHASES}, shoppers {SHOPPERS}, "
        f"checkout retries {shopper.checkout_retries}",
        f"shop SIGKILLed after {kill['paid_at_kill']} paid purchases "
        f"(webhooks in flight: {kill['deliveries_in_flight']}), restarted on the same port",
        f"events {stats['events_created']}, delivery attempts {stats['delivery_attempts']}, "
        f"duplicates {stats['duplicates_sent']}, dropped first {stats['dropped_first_attempts']}, "
        f"retries {stats['retries']}, failed for good {stats['deliveries_failed']}",
        f"attempts that met the dead shop: {dict(errors)}",
        f"shop answers {dict(sorted(shopper.shop_statuses.items()))}",
        f"orders {len(orders)}: {dict(statuses)}; sandbox sessions {len(sandbox.sessions)}; "
        f"webhook events recorded {len(seen)}",
        f"reconciler beside the shop (1 s, threshold 0 s): {reconciler.passes} passes "
        f"({reconciler.failures} failed), {totals.checked} orders checked, "
        f"{totals.changed} changed, {totals.in_flight} left in flight, "
        f"{totals.aborted} aborted, {totals.expired} expired, {totals.flagged} flagged",
        f"paid by: {dict(paid_by)}",
        money.figures(),
        f"took {time.monotonic() - started:.1f} s",
    ]
    request.config.stash.setdefault(CHAOS_FIGURES, []).extend(figures)
    print("\n".join(["", f"chaos figures ({backend}):", *figures]))

    # The money invariant: every paid session has its paid order, and no order is
    # paid without one; the reconcilers aborted, expired and flagged nothing.
    assert money.violations == []
    assert money.paid_sessions == money.paid_orders == PURCHASES
    assert money.flagged_orders == 0
    assert totals.aborted == totals.expired == totals.flagged == 0
    assert reconciler.passes > 0 and totals.checked > 0
    # Every purchase is one order, paid, exactly once; nothing lost, nothing doubled.
    assert len(set(session_ids)) == PURCHASES
    assert len(orders) == PURCHASES
    assert statuses == {"paid": PURCHASES}
    assert {o["stripe_session_id"] for o in orders} == set(session_ids)
    assert len(sandbox.sessions) == PURCHASES
    assert all(per_order[o["id"]] == ["pending", "paid"] for o in orders)
    # Stripe's truth: every completed event was eventually delivered and recorded once.
    assert stats["deliveries_failed"] == 0
    assert len(seen) == stats["events_created"] == PURCHASES
    # The chaos really happened.
    assert stats["duplicates_sent"] > 0 and stats["dropped_first_attempts"] > 0
    assert stats["retries"] > 0
    assert kill["paid_at_kill"] < PURCHASES and sum(errors.values()) > 0
    assert not [s for s in shopper.shop_statuses if s >= 500]
