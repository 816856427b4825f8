"""Three shop processes on one PostgreSQL behind a real HAProxy: chaos, a SIGKILL, SIGTERM.

The sandbox duplicates, shuffles and drops webhooks, which the proxy spreads over
the instances; one instance is SIGKILLed mid-run and restarted. Every instance
runs its reconciler every second (the advisory lock lets one pass run at a time).
At the end: nothing lost, nothing doubled, the money invariant holds.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from storefront.sandbox import SandboxSettings, create_sandbox_app
from storefront.serving import BackgroundServer, free_port
from tests.live import SECRET, STRICT_VERSION
from tests.pg import Cluster
from tests.reliability.chaos import (
    Instance,
    Shopper,
    Tally,
    chaos_sandbox,
    kill_line,
    publish,
    purchases_with_a_kill,
    read_all,
    seed_products,
    shoppers_http,
)
from tests.reliability.chaos import shop_env as chaos_env
from tests.reliability.instances import Proxy

PURCHASES = 500
SHOPPERS = 24


def shop_env(url: str, sandbox_url: str, base_url: str) -> dict[str, str]:
    """An instance's environment: one PostgreSQL, behind one proxy hop."""
    return chaos_env(
        sandbox_url,
        base_url,
        {"STOREFRONT_DATABASE_URL": url, "STOREFRONT_PROXY_HOPS": "1"},
    )


async def test_three_instances_behind_a_proxy_lose_and_double_nothing(
    pg_cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    started = time.monotonic()
    url = pg_cluster.new_database()
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    # The proxy's port is known before the instances start: their base URL is the proxy.
    proxy_port = free_port()
    env = shop_env(url, sandbox_url, f"http://127.0.0.1:{proxy_port}")
    await seed_products(env)
    instances = [Instance(f"shop{i}", env, tmp_path) for i in range(1, 4)]
    proxy = Proxy([i.port for i in instances], tmp_path, port=proxy_port)
    sandbox_app = chaos_sandbox(sandbox_url, f"{proxy.url}/webhook", seed=20262)
    sandbox = sandbox_app.extensions["sandbox"]
    victim = instances[1]
    async with (
        BackgroundServer(sandbox_app, port=sandbox_port),
        shoppers_http() as http,
    ):
        await asyncio.gather(*(i.start() for i in instances))
        try:
            async with proxy:
                shopper = Shopper(http, proxy.url)
                session_ids, kill = await purchases_with_a_kill(
                    shopper, PURCHASES, SHOPPERS, victim, sandbox, pause=1.0
                )
                await sandbox.wait_idle(40)
        finally:
            for instance in instances:
                await instance.kill()

    tally = Tally.read(url, sandbox, session_ids)
    publish(
        request,
        "chaos across instances figures",
        [
            f"instances 3 behind HAProxy on one PostgreSQL; purchases {PURCHASES}, "
            f"shoppers {SHOPPERS}, checkout retries {shopper.checkout_retries}",
            kill_line(victim, kill),
            tally.deliveries_line(),
            f"answers through the proxy {dict(sorted(shopper.shop_statuses.items()))}",
            tally.orders_line(),
            f"lost {len(tally.lost)}, doubled {len(tally.doubled)}; "
            f"paid by: {dict(tally.paid_by)}",
            tally.money.figures(),
            f"took {time.monotonic() - started:.1f} s",
        ],
    )

    tally.assert_each_paid_once(PURCHASES, kill)


async def test_sigterm_finishes_an_inflight_checkout_and_exits_0(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    url = pg_cluster.new_database()
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
    env = shop_env(url, sandbox_url, f"http://127.0.0.1:{shop_port}")
    await seed_products(env)
    instance = Instance("shop", env, tmp_path, port=shop_port)
    async with BackgroundServer(sandbox_app, port=sandbox_port), shoppers_http() as http:
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
