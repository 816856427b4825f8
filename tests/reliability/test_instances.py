"""Three shop processes on one PostgreSQL behind a real HAProxy: chaos, a SIGKILL, SIGTERM.

The sandbox duplicates, shuffles and drops webhooks, which the proxy spreads over
the instances; one instance is SIGKILLed mid-run and restarted. Every instance
runs its reconciler every second (the advisory lock lets one pass run at a time).
At the end: nothing lost, nothing doubled, the money invariant holds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.rows import dict_row

from storefront.catalog import read_products_file
from storefront.sandbox import SandboxSettings, create_sandbox_app
from storefront.serving import BackgroundServer, free_port
from storefront.store.postgres import PostgresStore
from tests.live import SECRET, STRICT_VERSION
from tests.money import check_money, read_orders, sandbox_sessions
from tests.pg import Cluster
from tests.reliability.conftest import CHAOS_FIGURES
from tests.reliability.instances import Instance, Proxy
from tests.reliability.test_chaos import Shopper

ROOT = Path(__file__).resolve().parents[2]
PURCHASES = 500
SHOPPERS = 24
RETRIES = (0.5, 1.0, 1.0, 2.0, 3.0, 5.0, 8.0)


def shop_env(url: str, sandbox_url: str, base_url: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "STOREFRONT_"))},
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_API_BASE": sandbox_url,
        "STOREFRONT_BASE_URL": base_url,
        "STOREFRONT_DATABASE_URL": url,
        # Every instance reconciles every second, as aggressive as it gets.
        "STOREFRONT_RECONCILE_INTERVAL": "1",
        "STOREFRONT_RECONCILE_AFTER": "0",
        "STOREFRONT_CHECKOUT_RATE_LIMIT": "0",
        "STOREFRONT_PROXY_HOPS": "1",
    }


async def seeded(cluster: Cluster) -> str:
    url = cluster.new_database()
    store = PostgresStore(url)
    await store.open()
    await store.save_products(read_products_file(ROOT / "data" / "products.toml"))
    await store.close()
    return url


def read_all(url: str, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return list(conn.execute(sql))


async def test_three_instances_behind_a_proxy_lose_and_double_nothing(
    pg_cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    started = time.monotonic()
    url = await seeded(pg_cluster)
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    # The proxy's port is known before the instances start: their base URL is the proxy.
    proxy_port = free_port()
    env = shop_env(url, sandbox_url, f"http://127.0.0.1:{proxy_port}")
    instances = [Instance(f"shop{i}", env, tmp_path) for i in range(1, 4)]
    proxy = Proxy([i.port for i in instances], tmp_path, port=proxy_port)
    sandbox_app = create_sandbox_app(
        SandboxSettings(
            public_url=sandbox_url,
            webhook_url=f"{proxy.url}/webhook",
            webhook_secret=SECRET,
            duplicate_rate=0.3,
            shuffle_window=8,
            shuffle_max_wait=0.1,
            drop_first_rate=0.3,
            retry_schedule=RETRIES,
            delivery_timeout=5.0,
            seed=20262,
            **STRICT_VERSION,
        )
    )
    sandbox = sandbox_app.extensions["sandbox"]
    victim = instances[1]
    async with (
        BackgroundServer(sandbox_app, port=sandbox_port),
        aiohttp.ClientSession() as http,
    ):
        await asyncio.gather(*(i.start() for i in instances))
        try:
            async with proxy:
                shopper = Shopper(http, proxy.url)
                gate = asyncio.Semaphore(SHOPPERS)

                async def one(n: int) -> str:
                    async with gate:
                        return await shopper.purchase(n)

                async def kill_and_restart() -> dict[str, Any]:
                    await shopper.enough_paid.wait()
                    busy = sandbox.deliverer.busy
                    await victim.kill()
                    await asyncio.sleep(1.0)
                    await victim.start()
                    return {"paid_at_kill": shopper.paid, "deliveries_in_flight": busy}

                *session_ids, kill = await asyncio.gather(
                    *(one(n) for n in range(PURCHASES)), kill_and_restart()
                )
                await sandbox.wait_idle(40)
        finally:
            for instance in instances:
                await instance.kill()
        money = check_money(read_orders(url), sandbox_sessions(sandbox))

    orders = read_all(url, "SELECT * FROM orders ORDER BY id")
    timeline = read_all(url, "SELECT * FROM order_events ORDER BY id")
    seen = read_all(url, "SELECT * FROM webhook_events")
    stats = dict(sandbox.stats)
    statuses = Counter(o["status"] for o in orders)
    per_order: dict[int, list[str]] = {}
    for entry in timeline:
        per_order.setdefault(entry["order_id"], []).append(entry["status"])
    paid_by = Counter(e["source"] for e in timeline if e["status"] == "paid")
    by_session = Counter(o["stripe_session_id"] for o in orders)
    lost = [s for s in session_ids if by_session[s] == 0]
    doubled = [s for s, n in by_session.items() if n > 1] + [
        o for o, entries in per_order.items() if entries.count("paid") > 1
    ]

    figures = [
        f"instances 3 behind HAProxy on one PostgreSQL; purchases {PURCHASES}, "
        f"shoppers {SHOPPERS}, checkout retries {shopper.checkout_retries}",
        f"{victim.name} SIGKILLed after {kill['paid_at_kill']} paid purchases "
        f"(webhooks in flight: {kill['deliveries_in_flight']}), restarted on the same port",
        f"events {stats['events_created']}, delivery attempts {stats['delivery_attempts']}, "
        f"duplicates {stats['duplicates_sent']}, dropped first {stats['dropped_first_attempts']}, "
        f"retries {stats['retries']}, failed for good {stats['deliveries_failed']}",
        f"answers through the proxy {dict(sorted(shopper.shop_statuses.items()))}",
        f"orders {len(orders)}: {dict(statuses)}; sandbox sessions {len(sandbox.sessions)}; "
        f"webhook events recorded {len(seen)}",
        f"lost {len(lost)}, doubled {len(doubled)}; paid by: {dict(paid_by)}",
        money.figures(),
        f"took {time.monotonic() - started:.1f} s",
    ]
    request.config.stash.setdefault(CHAOS_FIGURES, []).extend(figures)
    print("\n".join(["", "chaos across instances figures:", *figures]))

    assert lost == [] and doubled == []
    assert money.violations == []
    assert money.paid_sessions == money.paid_orders == PURCHASES
    assert money.flagged_orders == 0
    assert len(set(session_ids)) == PURCHASES == len(orders)
    assert statuses == {"paid": PURCHASES}
    assert all(per_order[o["id"]] == ["pending", "paid"] for o in orders)
    assert stats["deliveries_failed"] == 0
    assert len(seen) == stats["events_created"] == PURCHASES
    # The chaos really happened.
    assert stats["duplicates_sent"] > 0 and stats["dropped_first_attempts"] > 0
    assert kill["paid_at_kill"] < PURCHASES


async def test_sigterm_finishes_an_inflight_checkout_and_exits_0(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    url = await seeded(pg_cluster)
    sandbox_port, shop_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    # Stripe answers slowly: the checkout is still waiting on it when SIGTERM comes.
    sandbox_app = create_sandbox_app(
        SandboxSettings(
            public_url=sandbox_url,
            webhook_url=f"http://127.0.0.1:{shop_port}/webhook",
            webhook_secret=SECRET,
            latency_ms=1500,
            **STRICT_VERSION,
        )
    )
    instance = Instance("shop", shop_env(url, sandbox_url, "http://127.0.0.1:1"), tmp_path)
    instance.port = shop_port
    instance.env = {**instance.env, "STOREFRONT_BASE_URL": instance.url}
    async with BackgroundServer(sandbox_app, port=sandbox_port), aiohttp.ClientSession() as http:
        await instance.start()
        try:

            async def checkout() -> tuple[int, str]:
                async with http.post(
                    f"{instance.url}/checkout/enamel-mug",
                    data={"attempt": "sigterm-attempt-0000000"},
                    headers={"HX-Request": "true"},
                    allow_redirects=False,
                ) as response:
                    return response.status, response.headers.get("HX-Redirect", "")

            in_flight = asyncio.create_task(checkout())
            await asyncio.sleep(0.5)
            assert not in_flight.done()
            code = asyncio.create_task(instance.terminate())
            await asyncio.sleep(0.3)
            # Stopped accepting: a new connection is refused while the checkout finishes.
            with pytest.raises(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", shop_port)
                writer.close()
            status, redirect = await in_flight
            assert status == 204 and redirect.startswith(f"{sandbox_url}/c/pay/")
            assert await code == 0
        finally:
            await instance.kill()
    orders = read_all(url, "SELECT status, stripe_session_id FROM orders")
    assert len(orders) == 1 and orders[0]["stripe_session_id"] == redirect.rsplit("/", 1)[-1]
