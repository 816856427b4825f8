"""Fixtures for the reliability suite: real SQLite files, the real sandbox, real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from storefront.config import Settings
from storefront.store import Store
from tests.live import LiveStack
from tests.money import assert_money_invariant

# Figures the chaos test leaves for the terminal summary.
CHAOS_FIGURES = pytest.StashKey[list[str]]()


class Stack(LiveStack):
    """A LiveStack whose shop settings can be changed per test."""

    def __init__(
        self,
        database: Path,
        shop: dict[str, Any] | None = None,
        shop_env: dict[str, str] | None = None,
        *,
        database_url: str | None = None,
        **knobs: Any,
    ):
        super().__init__(database, shop_env, database_url=database_url, **knobs)
        self.shop_overrides = shop or {}

    def shop_settings(self) -> Settings:
        return dataclasses.replace(super().shop_settings(), **self.shop_overrides)


class Stacks(list[Stack]):
    """Started stacks, and where the next one's database comes from."""

    def __init__(self, fresh_database: Callable[[], str | None]):
        super().__init__()
        self.fresh_database = fresh_database


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client (no cookies shared between tests)."""
    async with aiohttp.ClientSession() as session:
        yield session


async def snapshot(db: Store) -> list[tuple[Any, ...]]:
    """Every row of every shop table, to compare before and after."""
    rows: list[tuple[Any, ...]] = []
    for table in ("products", "orders", "order_events", "webhook_events"):
        rows += [
            (table, *tuple(r)) for r in await db.fetch_all(f"SELECT * FROM {table} ORDER BY 1")
        ]
    return rows


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the chaos run's figures after the test session."""
    lines = config.stash.get(CHAOS_FIGURES, [])
    if lines:
        terminalreporter.section("chaos figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
async def stacks(fresh_database: Callable[[], str | None]) -> AsyncIterator[Stacks]:
    """Stacks the test starts; each is held to the money invariant, then stopped."""
    started = Stacks(fresh_database)
    yield started
    try:
        for stack in started:
            await stack.sandbox_state.wait_idle(15)
            assert_money_invariant(stack.location, stack.sandbox_state)
    finally:
        for stack in started:
            await stack.stop()


async def start(
    stacks: Stacks, tmp_path: Path, shop: dict[str, Any] | None = None, **knobs: Any
) -> Stack:
    stack = Stack(
        tmp_path / f"shop{len(stacks)}.sqlite3",
        shop=shop,
        database_url=stacks.fresh_database(),
        **knobs,
    )
    await stack.start()
    stacks.append(stack)
    return stack
