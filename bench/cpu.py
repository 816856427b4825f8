"""CPU time per request of the shop's Hypercorn worker, for before/after comparisons.

Wall-clock throughput on a shared machine moves with whatever else runs; the
worker's own CPU time (utime + stime from ``/proc/PID/stat``) over a fixed
number of requests does not, much. Each path is driven by an aiohttp client in
this process, after a warm-up, and the worker's CPU time per request is printed
(median of the rounds, with the spread). See ``bench/CPU.md``.

    .venv/bin/python -m bench.cpu webhook catalog checkout --requests 2000 --rounds 3
    git archive COMMIT | tar -x -C /tmp/before   # then, to compare in alternating rounds:
    .venv/bin/python -m bench.cpu webhook --before /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench import fixtures, targets
from bench.procs import Server, servers

TICKS = os.sysconf("SC_CLK_TCK")
Send = Callable[[aiohttp.ClientSession, int], Awaitable[int]]
WARM_UP = 200


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


def cpu_per_request(server: Server, send: Send, count: int, concurrency: int, start: int) -> float:
    """Worker CPU milliseconds per request over ``count`` requests."""
    (pid,) = server.workers()
    before = cpu_seconds(pid)
    asyncio.run(drive(server.url, send, count, concurrency, start))
    return (cpu_seconds(pid) - before) * 1000 / count


def webhook(tag: str, needed: int) -> tuple[list[Server], Send]:
    """POST /webhook: distinct signed checkout.session.completed events for pending orders."""
    db = fixtures.fresh_database(f"cpu-webhook-{tag}")
    orders = fixtures.add_pending_orders(db, needed, f"cpu{tag}")
    events = []
    for i, order in enumerate(orders):
        body = fixtures.completed_event(order, f"evt_cpu{tag}_{i:06d}")
        events.append((fixtures.signed(body), body.encode()))

    async def send(session: aiohttp.ClientSession, n: int) -> int:
        signature, body = events[n]
        headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
        async with session.post("/webhook", data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"webhook answered {response.status}")
            return response.status

    return [targets.shop(f"cpu-webhook-{tag}", db, api_base="")], send


def catalog(tag: str, needed: int) -> tuple[list[Server], Send]:
    """GET /: the catalog page."""
    db = fixtures.fresh_database(f"cpu-catalog-{tag}")

    async def send(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get("/") as response:
            await response.read()
            return response.status

    return [targets.shop(f"cpu-catalog-{tag}", db, api_base="")], send


def checkout(tag: str, needed: int) -> tuple[list[Server], Send]:
    """POST /checkout/<slug> against the sandbox without latency (its CPU is not counted)."""
    db = fixtures.fresh_database(f"cpu-checkout-{tag}")
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
    shop = targets.shop(f"cpu-checkout-{tag}", db, api_base=sandbox.url)
    return [sandbox, shop], send


def poll(tag: str, needed: int) -> tuple[list[Server], Send]:
    """GET /orders/<token>/status over pending orders."""
    db = fixtures.fresh_database(f"cpu-poll-{tag}")
    orders = fixtures.add_pending_orders(db, 2000, f"cpupoll{tag}")

    async def send(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get(f"/orders/{orders[n % len(orders)].token}/status") as response:
            await response.read()
            return response.status

    return [targets.shop(f"cpu-poll-{tag}", db, api_base="")], send


def hello(tag: str, needed: int) -> tuple[list[Server], Send]:
    """GET / of the smallest ASGI app on the same server: the floor the catalog is held to."""

    async def send(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get("/") as response:
            await response.read()
            return response.status

    return [targets.hypercorn(f"cpu-hello-{tag}", targets.HELLO)], send


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
    parser.add_argument(
        "--before",
        type=Path,
        help="a source tree of the shop to compare with (e.g. `git archive` of a commit), "
        "measured in rounds alternating with this one",
    )
    args = parser.parse_args(argv)
    sides = {"now": None, "before": args.before} if args.before else {"now": None}
    needed = WARM_UP + args.requests * args.rounds
    for name in args.paths:
        built = {side: PATHS[name](side, needed) for side in sides}
        for side, tree in sides.items():
            if tree is not None and built[side][0][-1].argv[1] == targets.SHOP:
                # Hypercorn imports the app from the folder its path names; this
                # project's environment serves both trees.
                shop = built[side][0][-1]
                shop.argv[1] = f"{tree.resolve() / 'storefront'}:create_app()"
                shop.env["PYTHONPATH"] = str(tree.resolve())
        figures: dict[str, list[float]] = {side: [] for side in sides}
        with servers(*(item for items, _ in built.values() for item in items)):
            for items, send in built.values():
                cpu_per_request(items[-1], send, WARM_UP, args.concurrency, 0)
            for r in range(args.rounds):
                for side, (items, send) in built.items():
                    start = WARM_UP + r * args.requests
                    figures[side].append(
                        cpu_per_request(items[-1], send, args.requests, args.concurrency, start)
                    )
        for side, found in figures.items():
            print(
                f"{name} ({side}): {statistics.median(found):.3f} ms CPU/request "
                f"(rounds {min(found):.3f}-{max(found):.3f}; {args.requests} requests each)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
