"""`storefront serve` as a real process: where its database comes from, and losing it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import stripe

from storefront.serving import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parents[2]
STOREFRONT = Path(sys.executable).parent / "storefront"
SECRET = "whsec_servetestsecret0123456789"
REAL_KEY = {
    "STRIPE_SECRET_KEY": "sk_test_abcdefghijkl",
    "STRIPE_WEBHOOK_SECRET": SECRET,
    # Nothing listens there: these tests never need Stripe to answer.
    "STRIPE_API_BASE": "http://127.0.0.1:9",
}


def environment(database: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "STOREFRONT_"))}
    return {
        **base,
        "STOREFRONT_DATABASE": str(database),
        "STOREFRONT_RECONCILE_INTERVAL": "0",
        **extra,
    }


class Serve:
    """One `storefront serve` process, its output collected in a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str):
        self.env = env
        self.log = log
        self.args = args
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                str(STOREFRONT),
                "serve",
                "--port",
                str(self.port),
                *self.args,
                env=self.env,
                stdout=out,
                stderr=out,
            )

    async def listening(self) -> None:
        await wait_until_listening("127.0.0.1", self.port, within=20)

    async def finished(self, within: float = 20) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), within)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await self.finished()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def processes() -> AsyncIterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for process in started:
        await process.stop()


async def init_db(database: Path) -> None:
    """Create the database on purpose, with the sample products, as an operator would."""
    for command in (["init-db"], ["import-products", str(ROOT / "data" / "products.toml")]):
        proc = await asyncio.create_subprocess_exec(
            str(STOREFRONT), *command, env=environment(database, **REAL_KEY)
        )
        assert await proc.wait() == 0


def signed_event(event_id: str) -> tuple[str, dict[str, str]]:
    body = json.dumps(
        {"id": event_id, "object": "event", "type": "customer.created", "data": {"object": {}}}
    )
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}


async def test_a_vanished_database_makes_webhooks_fail_so_stripe_retries(
    tmp_path: Path, processes: list[Serve]
) -> None:
    folder = tmp_path / "instance"
    database = folder / "shop.sqlite3"
    await init_db(database)
    shop = Serve(environment(database, **REAL_KEY), tmp_path / "shop.log")
    processes.append(shop)
    await shop.start()
    await shop.listening()
    async with aiohttp.ClientSession() as http:
        body, headers = signed_event("evt_before")
        async with http.post(f"{shop.url}/webhook", data=body, headers=headers) as response:
            assert response.status == 200

        shutil.rmtree(folder)  # the operator's slip, or a lost volume

        body, headers = signed_event("evt_after")
        async with http.post(f"{shop.url}/webhook", data=body, headers=headers) as response:
            # Not 2xx: Stripe keeps the event and sends it again later.
            assert response.status == 503
        # A checkout cannot open its order either, and says so.
        async with http.post(f"{shop.url}/checkout/enamel-mug", data={}) as response:
            assert response.status == 503
            assert "cannot take orders right now" in await response.text()
    await shop.stop()
    output = shop.output()
    assert "evt_after" in output and "was deleted or replaced" in output
    assert not database.exists()

    # Restarted, the shop refuses to begin again on a fresh, empty database.
    again = Serve(environment(database, **REAL_KEY), tmp_path / "again.log")
    processes.append(again)
    await again.start()
    assert await again.finished() == 2
    lines = again.output().strip().splitlines()
    assert len(lines) == 1 and "storefront init-db" in lines[0], lines
    assert not database.exists() and not folder.exists()


async def test_serve_with_a_real_key_never_creates_the_database(
    tmp_path: Path, processes: list[Serve]
) -> None:
    database = tmp_path / "instance" / "shop.sqlite3"
    shop = Serve(environment(database, **REAL_KEY), tmp_path / "shop.log")
    processes.append(shop)
    await shop.start()
    assert await shop.finished() == 2
    output = shop.output()
    assert output.count("\n") == 1
    assert f"no database at {database}: create it with `storefront init-db`" in output
    assert not database.parent.exists()


async def test_hypercorn_never_creates_the_database_either(tmp_path: Path) -> None:
    database = tmp_path / "shop.sqlite3"
    proc = await asyncio.create_subprocess_exec(
        str(STOREFRONT.parent / "hypercorn"),
        "storefront:create_app()",
        "--bind",
        f"127.0.0.1:{free_port()}",
        env=environment(database, **REAL_KEY),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    # It stops (Hypercorn's own exit status is 0 even so) and says what to do.
    output = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
    assert "LifespanFailureError" in output and "storefront init-db" in output
    assert not database.exists()


async def test_the_sandbox_demo_still_starts_with_the_sample_shop(
    tmp_path: Path, processes: list[Serve]
) -> None:
    database = tmp_path / "instance" / "shop.sqlite3"
    shop = Serve(environment(database), tmp_path / "shop.log", "--sandbox-port", str(free_port()))
    processes.append(shop)
    await shop.start()
    await shop.listening()
    async with aiohttp.ClientSession() as http, http.get(shop.url) as response:
        assert response.status == 200
        assert "Enamel mug" in await response.text()
    await shop.stop()
    assert "with the sample products" in shop.output()
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] == 4
