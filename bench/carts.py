"""Carts: filled cookie carts for checkout under load, and the race for the last units."""

from __future__ import annotations

import asyncio
import math
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import fixtures
from bench.measure import Goal, Series, goal_at_most
from bench.procs import Server, settle
from storefront.orders import timestamp

# The three products of every benchmark cart, one unit each.
CART = ("enamel-mug", "dotted-notebook", "canvas-tote")
# Counted stock that the load never exhausts: every checkout reserves, none pays.
PLENTY = 1_000_000_000
SOLD_OUT = "sold out"


def cart_database(name: str) -> Path:
    """A fresh shop database whose cart products have counted (ample) stock."""
    path = fixtures.fresh_database(name)
    conn = sqlite3.connect(path)
    try:
        with conn:
            marks = ",".join("?" * len(CART))
            conn.execute(f"UPDATE products SET stock = ? WHERE slug IN ({marks})", (PLENTY, *CART))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path


def add_carts(path: Path, count: int, slugs: tuple[str, ...] = CART) -> list[str]:
    """Insert ``count`` carts holding one unit of each product; their cookie tokens.

    Written straight into the database as the cart's own add would leave them,
    so the round measures the checkout alone.
    """
    tokens = [secrets.token_urlsafe(24) for _ in range(count)]
    now = timestamp()
    conn = sqlite3.connect(path, timeout=10)
    try:
        marks = ",".join("?" * len(slugs))
        ids = [
            r[0] for r in conn.execute(f"SELECT id FROM products WHERE slug IN ({marks})", slugs)
        ]
        if len(ids) != len(slugs):
            raise RuntimeError(f"products missing for a cart: {slugs}")
        with conn:
            first = conn.execute("SELECT coalesce(max(id), 0) FROM carts").fetchone()[0] + 1
            conn.executemany(
                "INSERT INTO carts (id, token, created_at, updated_at) VALUES (?, ?, ?, ?)",
                [(first + i, t, now, now) for i, t in enumerate(tokens)],
            )
            conn.executemany(
                "INSERT INTO cart_items (cart_id, product_id, quantity, added_at)"
                " VALUES (?, ?, 1, ?)",
                [(first + i, p, now) for i in range(count) for p in ids],
            )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return tokens


def write_tokens(tokens: list[str], tag: str) -> Path:
    """One cart token per line, for the wrk script that checks carts out."""
    return fixtures.write_paths(tokens, f"carts-{tag}")


def add_scarce_product(path: Path, slug: str, stock: int) -> None:
    """A product with only ``stock`` units left, to race for."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        with conn:
            conn.execute(
                "INSERT INTO products (slug, name, description, unit_amount, currency, stock)"
                " VALUES (?, ?, 'The last few.', 1800, 'eur', ?)",
                (slug, f"Last {stock} ({slug})", stock),
            )
    finally:
        conn.close()


def reserved(path: Path, slug: str) -> int:
    """Units of a product held by open checkouts."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        row = conn.execute("SELECT reserved FROM products WHERE slug = ?", (slug,)).fetchone()
        return int(row[0])
    finally:
        conn.close()


@dataclass(frozen=True)
class Answer:
    """One shopper's answer: status, whether it says sold out, and how long it took."""

    status: int
    sold_out: bool
    ms: float


async def _checkout(
    http: aiohttp.ClientSession, url: str, token: str, go: asyncio.Event
) -> Answer:
    await go.wait()
    started = time.perf_counter()
    async with http.post(
        url + "/cart/checkout",
        data={},
        headers={"Cookie": f"cart={token}"},
        allow_redirects=False,
    ) as response:
        body = await response.text()
        return Answer(
            response.status, SOLD_OUT in body.lower(), (time.perf_counter() - started) * 1000
        )


async def _race(url: str, tokens: list[str]) -> list[Answer]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        go = asyncio.Event()
        tasks = [asyncio.create_task(_checkout(http, url, t, go)) for t in tokens]
        await asyncio.sleep(0.05)  # every task waits at the gate before it opens
        go.set()
        return list(await asyncio.gather(*tasks))


def p99(values: list[float]) -> float:
    """The nearest-rank 99th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass(frozen=True)
class RaceRound:
    """What one race left: how many paid the way forward, how many heard sold out."""

    won: int
    sold_out: int
    other: int
    reserved: int
    p99_ms: float


def race(server: Server, path: Path, tag: str, shoppers: int, stock: int) -> RaceRound:
    """``shoppers`` carts holding the same scarce product check out at the same moment."""
    slug = f"last-{tag}"
    add_scarce_product(path, slug, stock)
    tokens = add_carts(path, shoppers, (slug,))
    # Checkouts still in flight from the rounds before must not be timed here.
    settle(server.tree(), within=10.0)
    answers = asyncio.run(_race(server.url, tokens))
    won = sum(1 for a in answers if a.status == 303)
    refused = sum(1 for a in answers if a.status == 409 and a.sold_out)
    return RaceRound(
        won, refused, shoppers - won - refused, reserved(path, slug), p99([a.ms for a in answers])
    )


def race_goals(
    label: str, rounds: list[RaceRound], stock: int, bound_ms: float
) -> tuple[Series, list[Goal]]:
    """The race's series (p99 per round) and its two goals: exact winners, p99 bound."""
    series = Series(label)
    series.values = [r.p99_ms for r in rounds]
    series.notes = [
        f"round {i}: {r.won} checkouts opened, {r.sold_out} told sold out, {r.other} other "
        f"answers; {r.reserved} units reserved; p99 {r.p99_ms:.0f} ms"
        for i, r in enumerate(rounds, 1)
    ]
    exact = all(r.won == stock and r.reserved == stock and r.other == 0 for r in rounds)
    worst = max(r.p99_ms for r in rounds)
    goals = [
        Goal(
            f"exactly {stock} succeed, the rest told sold out (every round)",
            ", ".join(f"{r.won} won / {r.sold_out} sold out / {r.other} other" for r in rounds),
            exact,
            "" if exact else "wrong count",
        ),
        goal_at_most(f"p99 ≤ {bound_ms:,.0f} ms (worst round)", worst, bound_ms, " ms"),
    ]
    return series, goals
