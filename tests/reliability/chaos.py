"""What the chaos runs share: shop processes, shoppers, a chaotic sandbox, and the tally.

``test_chaos.py`` (one shop, SQLite or PostgreSQL) and ``test_instances.py``
(three shops behind a proxy) both buy hundreds of things while the sandbox
duplicates, shuffles and drops webhooks and one shop process is SIGKILLed and
restarted; then both count what the databases and the sandbox hold and hold
them to the money invariant.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.rows import dict_row
from quart import Quart

from storefront.catalog import read_products_file
from storefront.config import Settings
from storefront.sandbox import SandboxSettings, create_sandbox_app
from storefront.serving import free_port, wait_until_listening
from storefront.store import make_store
from tests.live import CARD, SECRET, STRICT_VERSION
from tests.money import MoneyCheck, check_money, read_orders, sandbox_sessions
from tests.reliability.conftest import CHAOS_FIGURES

ROOT = Path(__file__).resolve().parents[2]
HYPERCORN = Path(sys.executable).parent / "hypercorn"
SLUGS = ("enamel-mug", "dotted-notebook", "canvas-tote", "mountain-poster")
KILL_AFTER = 70  # purchases paid before a shop is killed
# Long enough to outlive the restart; short enough to keep the test brisk.
RETRIES = (0.5, 1.0, 1.0, 2.0, 3.0, 5.0, 8.0)
# What the README recommends in production: in-flight requests get this long on SIGTERM.
GRACEFUL_TIMEOUT = 30


class Instance:
    """One shop under Hypercorn in its own process (SIGTERM-able, SIGKILL-able)."""

    def __init__(self, name: str, env: dict[str, str], folder: Path, port: int | None = None):
        self.name = name
        self.port = port or free_port()
        self.env = env
        self.log = folder / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                str(HYPERCORN),
                "storefront:create_app()",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "0",  # serve in this very process: the pid we signal is the server
                "--graceful-timeout",
                str(GRACEFUL_TIMEOUT),
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=out,
            )
        # Generous: on a loaded machine a fresh interpreter takes a while to import the shop.
        await wait_until_listening("127.0.0.1", self.port, within=60)

    async def kill(self) -> None:
        """SIGKILL: no goodbye, as a crashed machine."""
        if self.proc is not None and self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        self.proc = None

    async def terminate(self) -> int:
        """SIGTERM, then wait for the exit; the exit code."""
        assert self.proc is not None and self.proc.returncode is None
        os.kill(self.proc.pid, signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), GRACEFUL_TIMEOUT + 10)
        self.proc = None
        return code


def shop_env(sandbox_url: str, base_url: str, settings: dict[str, str]) -> dict[str, str]:
    """A shop process's environment: this one's, minus our settings, plus ``settings``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "STOREFRONT_"))},
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_API_BASE": sandbox_url,
        "STOREFRONT_BASE_URL": base_url,
        # The shop's own reconciler, as aggressive as it gets.
        "STOREFRONT_RECONCILE_INTERVAL": "1",
        "STOREFRONT_RECONCILE_AFTER": "0",
        # Hundreds of purchases from one address on purpose.
        "STOREFRONT_CHECKOUT_RATE_LIMIT": "0",
        **settings,
    }


async def seed_products(env: dict[str, str]) -> None:
    """Create (or migrate) the database ``env`` names and put the catalog in it."""
    db = make_store(Settings.from_env(env), create=True)
    await db.open()
    await db.save_products(read_products_file(ROOT / "data" / "products.toml"))
    await db.close()


def chaos_sandbox(public_url: str, webhook_url: str, seed: int, **knobs: Any) -> Quart:
    """A sandbox that duplicates, shuffles and drops first deliveries."""
    return create_sandbox_app(
        SandboxSettings(
            public_url=public_url,
            webhook_url=webhook_url,
            webhook_secret=SECRET,
            duplicate_rate=0.3,
            shuffle_window=8,
            shuffle_max_wait=0.1,
            drop_first_rate=0.3,
            retry_schedule=RETRIES,
            delivery_timeout=5.0,
            seed=seed,
            **STRICT_VERSION,
            **knobs,
        )
    )


def read_all(location: Path | str, sql: str) -> list[dict[str, Any]]:
    """Rows of a shop's database (SQLite file or PostgreSQL URL), read-only."""
    if str(location).startswith("postgresql://"):
        with psycopg.connect(str(location), row_factory=dict_row) as pg:
            return list(pg.execute(sql))
    conn = sqlite3.connect(f"file:{location}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def shoppers_http() -> aiohttp.ClientSession:
    """A client that lets idle connections go before the servers do.

    Hypercorn closes a keep-alive connection after 5 s idle, aiohttp keeps one
    for 15 s: on a loaded machine a request could go out on a connection the
    server is closing just then and meet a reset, which says nothing about the shop.
    """
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(keepalive_timeout=2))


class Shopper:
    """Drives purchases like shoppers would: retry the same form when the shop is gone."""

    def __init__(self, http: aiohttp.ClientSession, shop_url: str, kill_after: int = KILL_AFTER):
        self.http = http
        self.shop_url = shop_url
        self.kill_after = kill_after
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
            assert response.status == 303, (response.status, await response.text())
            success_url = response.headers["Location"]
        self.paid += 1
        if self.paid >= self.kill_after:
            self.enough_paid.set()
        if n % 2:
            # Half the shoppers come back to the success page; some find the shop down.
            try:
                async with self.http.get(success_url) as page:
                    self.shop_statuses[page.status] += 1
            except aiohttp.ClientError:
                pass
        return pay_url.rsplit("/", 1)[-1]


@dataclass
class Kill:
    """When the victim died: purchases paid by then, and whether a webhook was in flight."""

    paid_at_kill: int
    deliveries_in_flight: bool


async def purchases_with_a_kill(
    shopper: Shopper,
    purchases: int,
    shoppers: int,
    victim: Instance,
    sandbox: Any,
    pause: float,
) -> tuple[list[str], Kill]:
    """Run the purchases, ``shoppers`` at a time; SIGKILL the victim midway, restart it.

    Returns the session ids bought, and the kill's moment.
    """
    gate = asyncio.Semaphore(shoppers)

    async def one(n: int) -> str:
        async with gate:
            return await shopper.purchase(n)

    async def kill_and_restart() -> Kill:
        await shopper.enough_paid.wait()
        # Counted at the kill: shoppers go on paying at the sandbox while it restarts.
        kill = Kill(shopper.paid, sandbox.deliverer.busy)
        await victim.kill()
        await asyncio.sleep(pause)
        await victim.start()
        return kill

    *session_ids, kill = await asyncio.gather(
        *(one(n) for n in range(purchases)), kill_and_restart()
    )
    return session_ids, kill


def kill_line(victim: Instance, kill: Kill) -> str:
    """The figures' line saying when the victim died."""
    return (
        f"{victim.name} SIGKILLed after {kill.paid_at_kill} paid purchases "
        f"(webhooks in flight: {kill.deliveries_in_flight}), restarted on the same port"
    )


@dataclass
class Tally:
    """What the shop's database and the sandbox hold after a run."""

    orders: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    seen: list[dict[str, Any]]
    stats: dict[str, int]
    sandbox_sessions: int
    money: MoneyCheck
    session_ids: list[str]

    @classmethod
    def read(cls, location: Path | str, sandbox: Any, session_ids: list[str]) -> Tally:
        """Count a finished run on the database at ``location`` and its sandbox."""
        return cls(
            orders=read_all(location, "SELECT * FROM orders ORDER BY id"),
            timeline=read_all(location, "SELECT * FROM order_events ORDER BY id"),
            seen=read_all(location, "SELECT * FROM webhook_events"),
            stats=dict(sandbox.stats),
            sandbox_sessions=len(sandbox.sessions),
            money=check_money(read_orders(location), sandbox_sessions(sandbox)),
            session_ids=session_ids,
        )

    @property
    def statuses(self) -> Counter[str]:
        return Counter(o["status"] for o in self.orders)

    @property
    def per_order(self) -> dict[int, list[str]]:
        """Each order's statuses, in the order they were recorded."""
        entries: dict[int, list[str]] = {}
        for entry in self.timeline:
            entries.setdefault(entry["order_id"], []).append(entry["status"])
        return entries

    @property
    def paid_by(self) -> Counter[str]:
        return Counter(e["source"] for e in self.timeline if e["status"] == "paid")

    @property
    def lost(self) -> list[str]:
        """Sessions bought that no order records."""
        recorded = {o["stripe_session_id"] for o in self.orders}
        return [s for s in self.session_ids if s not in recorded]

    @property
    def doubled(self) -> list[Any]:
        """Sessions with two orders, and orders paid twice."""
        by_session = Counter(o["stripe_session_id"] for o in self.orders)
        return [s for s, n in by_session.items() if n > 1] + [
            o for o, entries in self.per_order.items() if entries.count("paid") > 1
        ]

    def deliveries_line(self) -> str:
        stats = self.stats
        return (
            f"events {stats['events_created']}, delivery attempts {stats['delivery_attempts']}, "
            f"duplicates {stats['duplicates_sent']}, "
            f"dropped first {stats['dropped_first_attempts']}, "
            f"retries {stats['retries']}, failed for good {stats['deliveries_failed']}"
        )

    def orders_line(self) -> str:
        return (
            f"orders {len(self.orders)}: {dict(self.statuses)}; "
            f"sandbox sessions {self.sandbox_sessions}; webhook events recorded {len(self.seen)}"
        )

    def assert_each_paid_once(self, purchases: int, kill: Kill) -> None:
        """Nothing lost, nothing doubled, the money invariant holds, and chaos happened."""
        assert self.lost == [] and self.doubled == []
        # Every paid session has its paid order, and no order is paid without one.
        assert self.money.violations == []
        assert self.money.paid_sessions == self.money.paid_orders == purchases
        assert self.money.flagged_orders == 0
        assert len(set(self.session_ids)) == purchases == len(self.orders)
        assert self.statuses == {"paid": purchases}
        assert all(self.per_order[o["id"]] == ["pending", "paid"] for o in self.orders)
        # Stripe's truth: every completed event was eventually delivered and recorded once.
        assert self.stats["deliveries_failed"] == 0
        assert len(self.seen) == self.stats["events_created"] == purchases
        # The chaos really happened.
        assert self.stats["duplicates_sent"] > 0 and self.stats["dropped_first_attempts"] > 0
        assert kill.paid_at_kill < purchases


def publish(request: pytest.FixtureRequest, title: str, figures: list[str]) -> None:
    """Print a run's figures now and again in the session's summary."""
    request.config.stash.setdefault(CHAOS_FIGURES, []).extend(figures)
    print("\n".join(["", f"{title}:", *figures]))
