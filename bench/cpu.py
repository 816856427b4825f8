"""CPU time per request of the shop's Hypercorn worker, for before/after comparisons.

Wall-clock throughput on a shared machine moves with whatever else runs; the
worker's own CPU time (utime + stime from ``/proc/PID/stat``) over a fixed
number of requests does not, much. Each path is driven by an aiohttp client in
this process, after a warm-up, and the worker's CPU time per request is printed
(median of the rounds, with the spread). See ``bench/CPU.md``.

    .venv/bin/python -m bench.cpu webhook catalog checkout --requests 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench import fixtures, targets
from bench.procs import Server, servers

TICKS = os.sysconf("SC_CLK_TCK")
Send = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def drive(base: str, send: Send, count: int, concurrency: int, start: int) -> None:
    """Send requests ``start .. start + count - 1`` over ``concurrency`` connections."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=connector) as session:
        numbers = iter(range(start, start + count))

        async def worker() -> None:
            for n in numbers:
                status = await send(session, n)
                if status >= 500:
                    raise RuntimeError(f"request {n} answered {status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def measure(server: Server, send: Send, count: int, concurrency: int, rounds: int) -> list[float]:
    """Worker CPU milliseconds per request, one figure per round, after a warm-up."""
    (pid,) = server.workers()
    asyncio.run(drive(server.url, send, 200, concurrency, 0))
    figures = []
    for r in range(rounds):
        before = cpu_seconds(pid)
        asyncio.run(drive(server.url, send, count, concurrency, 200 + r * count))
        figures.append((cpu_seconds(pid) - before) * 1000 / count)
    return figures


def webhook(count: int, rounds: int) -> tuple[list[Server], Send]:
    """POST /webhook: distinct signed checkout.session.completed events for pending orders."""
    db = fixtures.fresh_database("cpu-webhook")
    orders = fixtures.add_pending_orders(db, 200 + count * rounds, "cpu")
    events = []
    for i, order in enumerate(orders):
        body = fixtures.completed_event(order, f"evt_cpu_{i:06d}")
        events.append((fixtures.signed(body), body.encode()))

    async def send(session: aiohttp.ClientSession, n: int) -> int:
        signature, body = events[n]
        headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
        async with session.post("/webhook", data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"webhook answered {response.status}")
            return response.status

    return [targets.shop("cpu-shop-webhook", db, api_base="")], send


def catalog(count: int, rounds: int) -> tuple[list[Server], Send]:
    """GET /: the catalog page."""
    db = fixtures.fresh_database("cpu-catalog")

    async def send(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get("/") as response:
            await response.read()
            return response.status

    return [targets.shop("cpu-shop-catalog", db, api_base="")], send


def checkout(count: int, rounds: int) -> tuple[list[Server], Send]:
    """POST /checkout/<slug> against the sandbox without latency (its CPU is not counted)."""
    db = fixtures.fresh_database("cpu-checkout")
    sandbox = targets.sandbox(0)

    async def send(session: aiohttp.ClientSession, n: int) -> int:
        form = {"attempt": f"cpu-attempt-{n:010d}"}
        async with session.post(
            "/checkout/enamel-mug", data=form, allow_redirects=False
        ) as response:
            await response.read()
            if response.status != 303:
                raise RuntimeError(f"checkout answered {response.status}")
            return response.status

    # The shop's port is known only once built; the sandbox must be up first.
    shop = targets.shop("cpu-shop-checkout", db, api_base=sandbox.url)
    return [sandbox, shop], send


def poll(count: int, rounds: int) -> tuple[list[Server], Send]:
    """GET /orders/<token>/status over pending orders."""
    db = fixtures.fresh_database("cpu-poll")
    orders = fixtures.add_pending_orders(db, 2000, "cpupoll")

    async def send(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get(f"/orders/{orders[n % len(orders)].token}/status") as response:
            await response.read()
            return response.status

    return [targets.shop("cpu-shop-poll", db, api_base="")], send


def hello(count: int, rounds: int) -> tuple[list[Server], Send]:
    """GET / of the smallest ASGI app on the same server: the floor the catalog is held to."""

    async def send(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get("/") as response:
            await response.read()
            return response.status

    return [targets.hypercorn("cpu-hello", targets.HELLO)], send


PATHS = {
    "hello": hello,
    "webhook": webhook,
    "catalog": catalog,
    "checkout": checkout,
    "poll": poll,
}


def main(argv: list[str] | None = None) -> int:
    """Measure each named path and print its CPU milliseconds per request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", choices=sorted(PATHS))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args(argv)
    for name in args.paths:
        items, send = PATHS[name](args.requests, args.rounds)
        started = time.monotonic()
        with servers(*items) as running:
            figures = measure(running[-1], send, args.requests, args.concurrency, args.rounds)
        spread = f"{min(figures):.3f}-{max(figures):.3f}"
        print(
            f"{name}: {statistics.median(figures):.3f} ms CPU/request "
            f"(rounds {spread}; {args.requests} requests x {args.rounds}, "
            f"{time.monotonic() - started:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
