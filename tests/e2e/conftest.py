"""A live shop and sandbox for the browser tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.live import LiveStack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveStack]:
    database = tmp_path_factory.mktemp("e2e") / "shop.sqlite3"
    async with LiveStack(database) as live:
        yield live
