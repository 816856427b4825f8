"""CPU time per receipt poll of an unchanged pending order, against `storefront serve`.

Starts `storefront serve` (the shop and its sandbox in one process) on a fresh
SQLite file with one pending order, sends N polls over one keep-alive
connection, and reads the process's utime + stime from /proc/PID/stat before
and after. Two kinds of poll:

- ``full``: the fragment's URL without a version, so every poll reads the order
  and its timeline and renders the fragment (what every poll did before 204s);
- ``unchanged``: the URL the page's poller carries (``?v=…&every=…``), which
  answers 204 while the order stays as it is.

    .venv/bin/python -m bench.poll_cpu --polls 3000

CPU time, not wall-clock time: the machine is shared, so only the server's own
CPU seconds compare between runs. The sandbox in the same process stays idle.
On a crowded machine CPU time itself inflates (shared caches and cores);
``--callgrind`` runs the server under valgrind and counts the instructions it
executes per poll instead, which does not depend on the neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import html
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far (fields 14 and 15 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pending_order(database: Path) -> str:
    """Insert one pending order with a session, as checkout leaves it; its token."""
    token = secrets.token_urlsafe(24)
    conn = sqlite3.connect(database)
    try:
        product_id, amount, currency = conn.execute(
            "SELECT id, unit_amount, currency FROM products ORDER BY id LIMIT 1"
        ).fetchone()
        with conn:
            conn.execute(
                "INSERT INTO orders (token, product_id, amount_total, currency, stripe_session_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (token, product_id, amount, currency, "cs_bench_poll_cpu"),
            )
    finally:
        conn.close()
    return token


async def wait_until_up(http: aiohttp.ClientSession, url: str, within: float = 30.0) -> None:
    """Wait until the shop answers."""
    deadline = time.monotonic() + within
    while True:
        try:
            async with http.get(url) as response:
                await response.read()
                return
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def poller_url(http: aiohttp.ClientSession, base: str, token: str) -> str | None:
    """The status URL the receipt's poller carries, or None if the page has no version."""
    async with http.get(f"{base}/orders/{token}") as response:
        page = await response.text()
    found = re.search(r'hx-get="([^"]*/status\?[^"]*)"', page)
    return html.unescape(found.group(1)) if found else None


def callgrind_counting(pid: int, *, on: bool) -> None:
    """Switch callgrind's counting on or off in the running server."""
    switch = "--instr=on" if on else "--instr=off"
    subprocess.run(["callgrind_control", switch, str(pid)], check=True, capture_output=True)


def callgrind_dump(pid: int, out: Path) -> int:
    """Dump callgrind's counters (which resets them); the instructions since the last dump."""
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    newest = max(glob.glob(f"{out}*"), key=os.path.getmtime)
    for line in Path(newest).read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {newest}")


def next_poller(url: str, body: str) -> str:
    """The poller URL in a fragment, on the same origin as ``url``; ``url`` if there is none."""
    found = re.search(r'hx-get="([^"]*/status\?[^"]*)"', body)
    if not found:
        return url
    origin = url.split("/orders/", 1)[0]
    return origin + html.unescape(found.group(1))


async def measure(
    http: aiohttp.ClientSession,
    pid: int,
    url: str,
    polls: int,
    callgrind: Path | None,
    *,
    follow: bool,
) -> tuple[float, dict[int, int]]:
    """CPU µs (or instructions) per poll over ``polls`` sequential polls; the statuses seen."""
    statuses: dict[int, int] = {}
    for _ in range(50):  # warm up: imports, template cache, connection
        async with http.get(url) as response:
            await response.read()
    if callgrind:
        # Counting starts only now: the server started under valgrind uncounted (fast).
        callgrind_counting(pid, on=True)
    before = callgrind_dump(pid, callgrind) if callgrind else cpu_seconds(pid)
    for _ in range(polls):
        async with http.get(url) as response:
            body = await response.text()
            statuses[response.status] = statuses.get(response.status, 0) + 1
        if follow and response.status == 200:
            # As htmx would: the answer's poller (a new interval) replaces the old one.
            url = next_poller(url, body)
    if callgrind:
        counted = callgrind_dump(pid, callgrind)
        callgrind_counting(pid, on=False)
        return counted / polls, statuses
    return (cpu_seconds(pid) - before) / polls * 1e6, statuses


async def run(
    base: str, database: Path, pid: int, polls: int, rounds: int, callgrind: Path | None
) -> None:
    """Poll the running shop; print one line per kind and round."""
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        await wait_until_up(http, base + "/", within=900.0 if callgrind else 30.0)
        token = pending_order(database)
        kinds = {"full": f"{base}/orders/{token}/status"}
        versioned = await poller_url(http, base, token)
        if versioned:
            kinds["unchanged"] = base + versioned
        for round_ in range(1, rounds + 1):
            for kind, url in kinds.items():
                per_poll, statuses = await measure(
                    http, pid, url, polls, callgrind, follow=kind == "unchanged"
                )
                unit = "instructions" if callgrind else "µs CPU"
                print(
                    f"round {round_} {kind:9} {per_poll:9.0f} {unit} per poll"
                    f"  ({polls} polls, statuses {statuses})",
                    flush=True,
                )


def main() -> None:
    """Start `storefront serve` on a fresh database, measure, stop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "shop.sqlite3"
        port, sandbox_port = free_port(), free_port()
        env = {
            **os.environ,
            "STRIPE_SECRET_KEY": "",
            "STOREFRONT_DATABASE": str(database),
            "STOREFRONT_RECONCILE_INTERVAL": "0",
            "STOREFRONT_OUTBOX_INTERVAL": "0",
            # The made-up session is unknown to the sandbox: a poll asking about it
            # would settle the order. Measured here is the read path alone.
            "STOREFRONT_STATUS_SYNC_AFTER": "0",
        }
        tool = str(ROOT / ".venv" / "bin" / "storefront")
        argv = [tool, "serve", "--port", str(port), "--sandbox-port", str(sandbox_port)]
        callgrind = Path(tmp) / "callgrind.out" if args.callgrind else None
        if callgrind:
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", *argv]
            argv.insert(3, f"--callgrind-out-file={callgrind}")
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            base = f"http://{HOST}:{port}"
            asyncio.run(run(base, database, proc.pid, args.polls, args.rounds, callgrind))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
