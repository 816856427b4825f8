"""The shop and the sandbox served over real HTTP on free ports, for tests."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import secrets
import signal
import struct
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from quart import Quart

from storefront import create_app
from storefront.catalog import read_products_file
from storefront.config import Settings
from storefront.sandbox import SandboxSettings, create_sandbox_app
from storefront.serving import BackgroundServer, free_port, wait_until_listening
from storefront.store import Store, make_store

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_livetestsecret0123456789"
FAST_RETRIES = (0.2, 0.5, 1.0, 2.0, 4.0)
# Strict pinned-version mode on an account whose default is an older version: a call
# the shop made without Stripe-Version, or with another version, would fail the test.
STRICT_VERSION = {"require_api_version": True, "api_version": "2025-03-31.basil"}
# STOREFRONT_TEST_SERVER=granian (`make test-granian`): every LiveStack serves its shop
# with Granian in a process of its own instead of Hypercorn in the test's event loop.
TEST_SERVERS = ("hypercorn", "granian")
# Granian's start (a worker process, the app, its lifespan) and its SIGTERM shutdown.
GRANIAN_START_WITHIN = 60.0
GRANIAN_STOP_WITHIN = 45.0


def server_under_test() -> str:
    """Which server LiveStack runs the shop on: STOREFRONT_TEST_SERVER, else hypercorn."""
    server = os.environ.get("STOREFRONT_TEST_SERVER", "").strip() or "hypercorn"
    if server not in TEST_SERVERS:
        raise ValueError(f"STOREFRONT_TEST_SERVER must be one of {', '.join(TEST_SERVERS)}")
    return server


def live_database_url(request: pytest.FixtureRequest) -> str | None:
    """For a stack fixture parametrised by backend: a fresh PostgreSQL database, or None."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_cluster").new_database()
    return None


class LiveStack:
    """A sandbox and a shop talking to each other through real sockets."""

    def __init__(
        self,
        database: Path,
        shop_env: dict[str, str] | None = None,
        *,
        database_url: str | None = None,
        **sandbox_knobs: Any,
    ):
        self.database = database
        # PostgreSQL when set (tests.pg's database_url fixture), else the SQLite file.
        self.database_url = database_url
        self.shop_env = shop_env or {}
        self.shop_port = free_port()
        self.sandbox_port = free_port()
        self.shop_url = f"http://127.0.0.1:{self.shop_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        knobs = {
            "retry_schedule": FAST_RETRIES,
            "seed": 7,
            "async_payment_delay": 1.0,
            **STRICT_VERSION,
            **sandbox_knobs,
        }
        self.sandbox_settings = SandboxSettings(
            public_url=self.sandbox_url,
            webhook_url=f"{self.shop_url}/webhook",
            webhook_secret=SECRET,
            # Stacks run side by side: no mail catcher unless a test asks for a port.
            **{"smtp_port": 0, **knobs},
        )
        self.sandbox_app = create_sandbox_app(self.sandbox_settings)
        self.sandbox = BackgroundServer(self.sandbox_app, port=self.sandbox_port)
        self.shop_app: Quart | None = None
        self.shop: BackgroundServer | None = None
        self.server = server_under_test()
        # Under Granian: the shop's process, and the test's own Store on the same database.
        self.shop_process: asyncio.subprocess.Process | None = None
        self.check_db: Store | None = None
        self.shop_logs: asyncio.Server | None = None

    def shop_settings(self) -> Settings:
        settings = Settings.from_env(
            {
                "STRIPE_WEBHOOK_SECRET": SECRET,
                "STRIPE_API_BASE": self.sandbox_url,
                "STOREFRONT_BASE_URL": self.shop_url,
                "STOREFRONT_DATABASE": str(self.database),
                "STOREFRONT_DATABASE_URL": self.database_url or "",
                "STOREFRONT_RECONCILE_INTERVAL": "0",
                # The outbox drains only in tests that run a mail server.
                "STOREFRONT_OUTBOX_INTERVAL": "0",
                # Tests buy fast on purpose; the limit's own tests turn it on.
                "STOREFRONT_CHECKOUT_RATE_LIMIT": "0",
                **self.shop_env,
            }
        )
        return dataclasses.replace(settings, max_network_retries=3)

    @property
    def location(self) -> Path | str:
        """The shop's database: the PostgreSQL URL, or the SQLite file."""
        return self.database_url or self.database

    @property
    def db(self) -> Store:
        """The shop's database, for the test's own reads and writes."""
        if self.server == "granian":
            assert self.check_db is not None, "the stack is not started"
            return self.check_db
        assert self.shop_app is not None
        return self.shop_app.extensions["db"]

    @property
    def sandbox_state(self) -> Any:
        return self.sandbox_app.extensions["sandbox"]

    async def start(self) -> None:
        db = make_store(self.shop_settings(), create=True)
        await db.open()
        await db.save_products(read_products_file(ROOT / "data" / "products.toml"))
        if self.server == "granian":
            # The shop's own Store lives in another process: the test keeps this one.
            self.check_db = db
        else:
            await db.close()
        await self.sandbox.start()
        await self.start_shop()

    async def start_shop(self) -> None:
        if self.server == "granian":
            await self._start_granian_shop()
            return
        self.shop_app = create_app(self.shop_settings())
        self.shop = BackgroundServer(self.shop_app, port=self.shop_port)
        await self.shop.start()

    async def stop_shop(self) -> None:
        if self.shop_process is not None:
            await self._stop_granian_shop()
        if self.shop is not None:
            await self.shop.stop()
            self.shop = None

    async def stop(self) -> None:
        try:
            await self.stop_shop()
            await self.sandbox.stop()
        finally:
            if self.check_db is not None:
                await self.check_db.close()
                self.check_db = None

    async def _start_granian_shop(self) -> None:
        """Start tests.granian_shop with these settings; return once /healthz answers."""
        self.shop_logs = await asyncio.start_server(_log_records, "127.0.0.1", 0)
        log_port = self.shop_logs.sockets[0].getsockname()[1]
        self.shop_process = process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.granian_shop",
            str(self.shop_port),
            str(log_port),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
        )
        assert process.stdin is not None
        process.stdin.write(pickle.dumps(self.shop_settings()))
        process.stdin.close()
        try:
            await self._wait_for_granian_shop(process)
        except BaseException:
            # Never leave a shop running that no test will stop.
            if process.returncode is None:
                process.kill()
                await process.wait()
            self.shop_process = None
            if self.shop_logs is not None:
                self.shop_logs.close()
                self.shop_logs = None
            raise

    async def _wait_for_granian_shop(self, process: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GRANIAN_START_WITHIN
        await wait_until_listening("127.0.0.1", self.shop_port, GRANIAN_START_WITHIN)
        async with aiohttp.ClientSession() as http:
            while True:
                if process.returncode is not None:
                    raise AssertionError(f"the shop under Granian exited {process.returncode}")
                try:
                    async with http.get(
                        f"{self.shop_url}/healthz", timeout=aiohttp.ClientTimeout(total=5)
                    ) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if loop.time() > deadline:
                    raise AssertionError("the shop under Granian never answered /healthz")
                await asyncio.sleep(0.1)

    async def _stop_granian_shop(self) -> None:
        """SIGTERM, as a service manager stops it; anything but a clean exit fails the test."""
        process, self.shop_process = self.shop_process, None
        assert process is not None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), GRANIAN_STOP_WITHIN)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError("the shop under Granian did not stop on SIGTERM") from None
        finally:
            if self.shop_logs is not None:
                self.shop_logs.close()
                self.shop_logs = None
        assert code == 0, f"the shop under Granian exited {code} on SIGTERM"

    async def __aenter__(self) -> LiveStack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def order(self, token: str) -> dict[str, Any]:
        row = await self.db.fetch_one("SELECT * FROM orders WHERE token = ?", (token,))
        assert row is not None, f"no order {token}"
        return dict(row)

    async def wait_for_status(self, token: str, status: str, within: float = 10.0) -> None:
        """Wait until the order reaches ``status`` (webhooks arrive asynchronously)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (current := (await self.order(token))["status"]) != status:
            if loop.time() > deadline:
                raise AssertionError(f"order {token} is {current}, not {status}")
            await asyncio.sleep(0.05)


async def _log_records(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Hand the Granian shop's log records (SocketHandler's framing) to this process's logging."""
    try:
        while True:
            (size,) = struct.unpack(">L", await reader.readexactly(4))
            record = logging.makeLogRecord(pickle.loads(await reader.readexactly(size)))
            logging.getLogger(record.name).handle(record)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the shop's process ended
    finally:
        writer.close()


async def buy(http: aiohttp.ClientSession, stack: LiveStack, slug: str) -> tuple[str, str]:
    """Press Buy as htmx would; return the order token and the payment page URL."""
    async with http.post(
        f"{stack.shop_url}/checkout/{slug}",
        data={"attempt": secrets.token_urlsafe(16)},
        headers={"HX-Request": "true"},
        allow_redirects=False,
    ) as response:
        assert response.status in (200, 204), await response.text()
        pay_url = response.headers["HX-Redirect"]
    session_id = pay_url.rsplit("/", 1)[-1]
    row = await stack.db.fetch_one(
        "SELECT token FROM orders WHERE stripe_session_id = ?", (session_id,)
    )
    assert row is not None
    return row["token"], pay_url


CARD = {
    "email": "shopper@example.com",
    "name": "Test Shopper",
    "number": "4242 4242 4242 4242",
    "expiry": "12/34",
    "cvc": "123",
}


async def pay(
    http: aiohttp.ClientSession, pay_url: str, number: str = "4242 4242 4242 4242"
) -> aiohttp.ClientResponse:
    """Post the hosted page's card form; the answer is not followed."""
    async with http.post(
        f"{pay_url}/card", data={**CARD, "number": number}, allow_redirects=False
    ) as response:
        await response.read()
        return response
