"""Fixtures of the back-office tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client (a shopper's)."""
    async with aiohttp.ClientSession() as session:
        yield session
