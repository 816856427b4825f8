"""Emails over real SMTP: confirmations, notices, shipping, retries, and a SIGKILL mid-send."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from storefront.catalog import read_products_file
from storefront.mail import MailSettings
from storefront.outbox import drain
from storefront.sandbox import SandboxSettings, create_sandbox_app
from storefront.sandbox.mail import MailCatcher
from storefront.serving import BackgroundServer, free_port, wait_until_listening
from storefront.store.sqlite import SQLiteStore
from tests.admin.live_support import Staff, eventually, paid_order
from tests.live import ROOT, SECRET, STRICT_VERSION, LiveStack, buy, live_database_url, pay

SHOPKEEPER = "keeper@shop.example"
SHOPPER = "shopper@example.com"


def mail_env(port: int) -> dict[str, str]:
    """Shop settings that send through a mail server on ``port``, draining often."""
    return {
        "STOREFRONT_SMTP_PORT": str(port),
        "STOREFRONT_OUTBOX_INTERVAL": "0.1",
        "STOREFRONT_SHOPKEEPER_EMAIL": SHOPKEEPER,
        "STOREFRONT_MAIL_FROM": "orders@shop.example",
    }


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LiveStack]:
    port = free_port()
    async with LiveStack(
        tmp_path / "shop.sqlite3",
        mail_env(port),
        database_url=live_database_url(request),
        smtp_port=port,
    ) as live:
        yield live


def caught(stack: LiveStack) -> list[Any]:
    """Messages the sandbox's mail catcher holds, oldest first."""
    return list(reversed(stack.sandbox_app.extensions["sandbox_mail"].messages))


async def test_paid_orders_email_shopper_and_shopkeeper_and_shipping_sends_the_note(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    order = await paid_order(http, stack)

    async def two() -> bool:
        return len(caught(stack)) == 2

    await eventually(two)
    confirmation, notice = sorted(caught(stack), key=lambda m: m.rcpt_tos[0] != SHOPPER)
    assert confirmation.rcpt_tos == (SHOPPER,)
    assert f"order #{order['order_number']} is confirmed" in confirmation.subject
    assert "1 x Enamel mug: €18.00" in confirmation.text
    assert "€18.00" in confirmation.text and f"/orders/{order['token']}" in confirmation.text
    assert (
        notice.rcpt_tos == (SHOPKEEPER,)
        and f"New order #{order['order_number']}" in notice.subject
    )

    staff = await Staff.sign_in(stack)
    try:
        status, _ = await staff.post(
            f"/admin/orders/{order['id']}/fulfil", {"action": "shipped", "note": "Parcel 42"}
        )
        assert status == 303
        assert "shipped · Parcel 42" in await staff.get(f"/admin/orders/{order['id']}")
        # A second press changes nothing and sends nothing more.
        again, _ = await staff.post(f"/admin/orders/{order['id']}/fulfil", {"action": "shipped"})
        assert again == 409
    finally:
        await staff.close()

    async def three() -> bool:
        return len(caught(stack)) == 3

    await eventually(three)
    shipped = caught(stack)[-1]
    assert shipped.rcpt_tos == (SHOPPER,) and "on its way" in shipped.subject
    assert "Tracking: Parcel 42" in shipped.text
    await asyncio.sleep(0.5)
    assert len(caught(stack)) == 3


async def test_a_failed_send_is_kept_retried_with_backoff_and_sent_once(
    tmp_path: Path, database_url: str | None
) -> None:
    async with (
        LiveStack(tmp_path / "shop.sqlite3", database_url=database_url) as stack,
        aiohttp.ClientSession() as http,
    ):
        order = await paid_order(http, stack)
        dead = MailSettings(host="127.0.0.1", port=free_port(), tls="none", shopkeeper=SHOPKEEPER)
        report = await drain(stack.db, dead, stack.shop_url)
        assert (report.sent, report.failed) == (0, 2)
        rows = await stack.db.fetch_all("SELECT * FROM outbox ORDER BY id")
        assert all(r["sent_at"] is None and r["attempts"] == 1 for r in rows)
        assert all(r["next_attempt_at"] > time.time() for r in rows)
        assert all("Error" in r["last_error"] for r in rows)
        # Not due yet: the next pass leaves them alone.
        assert (await drain(stack.db, dead, stack.shop_url)).failed == 0

        catcher = MailCatcher(free_port(), _Clock())
        await catcher.start()
        try:
            live = MailSettings(
                host="127.0.0.1", port=catcher.port, tls="none", shopkeeper=SHOPKEEPER
            )
            await stack.db.execute("UPDATE outbox SET next_attempt_at = 0")
            assert (await drain(stack.db, live, stack.shop_url)).sent == 2
            assert (await drain(stack.db, live, stack.shop_url)).sent == 0
            assert sorted(m.rcpt_tos[0] for m in catcher.messages) == [SHOPKEEPER, SHOPPER]
            assert order["order_number"] in catcher.messages[0].subject
        finally:
            await catcher.stop()


class _Clock:
    def now(self) -> float:
        return time.time()


async def _stalling_smtp(connections: list[object]) -> asyncio.Server:
    """A mail server that accepts connections and never greets: a send hangs there."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read()  # until the client is gone
        # Since Python 3.12 Server.wait_closed waits for every connection to close.
        writer.close()

    return await asyncio.start_server(hang, "127.0.0.1", free_port())


async def _shop_process(env: dict[str, str], port: int, log: Path) -> Any:
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hypercorn",
            "storefront:create_app()",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "0",  # serve in this very process: the pid we kill is the server
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    await wait_until_listening("127.0.0.1", port, within=20)
    return proc


async def test_the_outbox_survives_a_kill_9_between_commit_and_send(tmp_path: Path) -> None:
    database = tmp_path / "shop.sqlite3"
    db = SQLiteStore(database)
    await db.open()
    await db.save_products(read_products_file(ROOT / "data" / "products.toml"))
    await db.close()
    shop_port, sandbox_port = free_port(), free_port()
    shop_url, sandbox_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{sandbox_port}"
    sandbox_app = create_sandbox_app(
        SandboxSettings(
            public_url=sandbox_url,
            webhook_url=f"{shop_url}/webhook",
            webhook_secret=SECRET,
            smtp_port=0,
            **STRICT_VERSION,
        )
    )
    connections: list[object] = []
    stalling = await _stalling_smtp(connections)
    smtp_port = stalling.sockets[0].getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "STOREFRONT_"))},
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_API_BASE": sandbox_url,
        "STOREFRONT_BASE_URL": shop_url,
        "STOREFRONT_DATABASE": str(database),
        "STOREFRONT_RECONCILE_INTERVAL": "0",
        **mail_env(smtp_port),
    }
    log = tmp_path / "shop.log"
    async with BackgroundServer(sandbox_app, port=sandbox_port), aiohttp.ClientSession() as http:
        stack = _Probe(shop_url, database)
        proc = await _shop_process(env, shop_port, log)
        try:
            token, pay_url = await buy(http, stack, "enamel-mug")  # type: ignore[arg-type]
            await pay(http, pay_url)
            # The paid order and its emails committed; the shop is inside the send.
            await eventually(lambda: stack.outbox_count())
            await eventually(lambda: _async(bool(connections)))
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        rows = await stack.outbox()
        assert len(rows) == 2 and all(r["sent_at"] is None for r in rows)
        assert (await stack.status(token)) == "paid"

        # Restarted (the mail server answering now on that same port): each email goes once.
        for writer in connections:
            writer.close()  # type: ignore[attr-defined]
        stalling.close()
        await stalling.wait_closed()
        catcher = MailCatcher(smtp_port, _Clock())
        await catcher.start()
        proc = await _shop_process(env, shop_port, log)
        try:

            async def all_sent() -> bool:
                return all(r["sent_at"] for r in await stack.outbox())

            await eventually(all_sent, within=20)
            await asyncio.sleep(0.5)  # a few more drain passes: nothing is sent twice
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
            await catcher.stop()
    recipients = sorted(m.rcpt_tos[0] for m in catcher.messages)
    assert recipients == [SHOPKEEPER, SHOPPER], recipients


async def _async(value: bool) -> bool:
    return value


class _Probe:
    """Enough of a LiveStack for ``buy``, reading the shop's database file directly."""

    def __init__(self, shop_url: str, database: Path):
        self.shop_url = shop_url
        self.database = database

    @property
    def db(self) -> _Probe:
        return self

    async def fetch_one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        import sqlite3

        def read() -> list[Any]:
            conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
            conn.row_factory = sqlite3.Row
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()

        return await asyncio.to_thread(read)

    async def outbox(self) -> list[Any]:
        return await self.fetch_all("SELECT * FROM outbox ORDER BY id")

    async def outbox_count(self) -> bool:
        return len(await self.outbox()) == 2

    async def status(self, token: str) -> str:
        row = await self.fetch_one("SELECT status FROM orders WHERE token = ?", (token,))
        return row["status"]
