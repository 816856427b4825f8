"""Granian, the optional production server: the command, its workers, its shutdown.

`make test-granian` also runs the integration, e2e and LiveStack suites with every
LiveStack's shop under Granian (STOREFRONT_TEST_SERVER=granian, tests/live.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from storefront.cli import main
from storefront.serving import free_port, wait_until_listening
from tests.live import LiveStack

STOREFRONT = Path(sys.executable).parent / "storefront"


async def buy(http: aiohttp.ClientSession, shop_url: str) -> tuple[int, str]:
    """Press Buy as htmx would; the status and the payment page's URL."""
    async with http.post(
        f"{shop_url}/checkout/enamel-mug",
        data={"attempt": "granian-shutdown-attempt"},
        headers={"HX-Request": "true"},
        allow_redirects=False,
    ) as response:
        return response.status, response.headers.get("HX-Redirect", "")


def output_of(log: Path) -> str:
    """What the command printed so far."""
    return log.read_text(errors="replace")


def wal_left(database: Path) -> bool:
    """Whether SQLite's write-ahead log is still there (a connection was never closed)."""
    return Path(f"{database}-wal").exists()


async def test_live_stack_serves_the_shop_on_the_chosen_server(tmp_path: Path) -> None:
    async with LiveStack(tmp_path / "shop.sqlite3") as stack, aiohttp.ClientSession() as http:
        async with http.get(stack.shop_url) as response:
            assert response.status == 200
            # Hypercorn says "hypercorn-h11", Granian "granian".
            assert response.headers["Server"].startswith(stack.server)
        if stack.server == "granian":
            assert stack.shop_process is not None and stack.shop_process.pid != os.getpid()
            assert stack.shop_app is None


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/webhook", "application/json"),
        ("/checkout/enamel-mug", "multipart/form-data; boundary=x"),
    ],
)
async def test_an_endless_chunked_body_is_413_on_the_chosen_server(
    tmp_path: Path, path: str, content_type: str
) -> None:
    async with LiveStack(tmp_path / "shop.sqlite3") as stack:
        before = await stack.db.fetch_all("SELECT * FROM orders")
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.shop_port)
        try:
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n".encode()
            )
            # Five 64 KiB chunks pass the 256 KiB limit; the body is never ended. Without
            # the limit the answer would wait for the server's body timeout (a minute).
            for _ in range(5):
                writer.write(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
                await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), timeout=30)
        finally:
            writer.close()
        assert status_line.split()[1] == b"413", status_line
        assert await stack.db.fetch_all("SELECT * FROM orders") == before


async def test_serve_with_granian_runs_every_workers_lifespan_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    database = tmp_path / "shop.sqlite3"
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "STOREFRONT_"))}
    env |= {"STOREFRONT_DATABASE": str(database), "STOREFRONT_RECONCILE_INTERVAL": "0.5"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(STOREFRONT),
            "serve",
            "--server",
            "granian",
            "--workers",
            "2",
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
            "--smtp-port",
            "0",
            # Every API call takes this long: a checkout is in flight when SIGTERM comes.
            "--latency-ms",
            "1500",
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        await wait_until_listening("127.0.0.1", port, within=30)
        await wait_until_listening("127.0.0.1", sandbox_port, within=30)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/") as response:
                assert response.status == 200
                assert response.headers["Server"] == "granian"
                assert "Enamel mug" in await response.text()
            # The sandbox runs beside it, in a process of its own (401: Stripe's answer to no key).
            async with http.get(f"http://127.0.0.1:{sandbox_port}/v1/products") as response:
                assert response.status == 401
            # Each worker ran the app's lifespan startup (database, payments, reconciler).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while output_of(log).count("shop ready at") < 2:
                assert loop.time() < deadline, output_of(log)
                await asyncio.sleep(0.1)
            checkout = asyncio.create_task(buy(http, f"http://127.0.0.1:{port}"))
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            # The worker finishes the checkout it holds before it stops.
            status, pay_url = await checkout
            assert status == 204, output_of(log)
            assert pay_url.startswith(f"http://127.0.0.1:{sandbox_port}/"), pay_url
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 40)
    output = output_of(log)
    assert code == 0, output
    assert output.count("Stopped worker-") == 2, output
    # Every worker's lifespan shutdown closed its connections: SQLite removed the WAL.
    assert not wal_left(database), output
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", sandbox_port)


def test_granian_without_the_extra_is_one_line_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What Python itself does for a package that cannot be imported here.
    monkeypatch.setitem(sys.modules, "granian", None)
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    database = tmp_path / "shop.sqlite3"
    assert main(["serve", "--server", "granian", "--database", str(database)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'storefront[granian]'" in err
    assert not database.exists()


def test_several_workers_need_granian(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    database = tmp_path / "shop.sqlite3"
    assert main(["serve", "--workers", "2", "--database", str(database)]) == 2
    assert capsys.readouterr().err == "storefront: --workers above 1 needs --server granian\n"
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--server", "granian", "--workers", "0", "--database", str(database)])
    assert exit_.value.code == 2
    assert "--workers" in capsys.readouterr().err
    assert not database.exists()
