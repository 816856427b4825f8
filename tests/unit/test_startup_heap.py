"""The fast path freezes the start-up heap once the app reports itself started."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from quart import Quart

from storefront.fastpath import FastPath


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """A process with nothing frozen (a live server started earlier in the run freezes)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


async def _lifespan(fast: FastPath) -> tuple[list[str], list[int]]:
    """Run a lifespan startup through ``fast``; what was sent, and the freeze count seen."""
    sent: list[str] = []
    frozen_before_send: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        frozen_before_send.append(gc.get_freeze_count())
        sent.append(message["type"])

    await fast({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    return sent, frozen_before_send


async def test_startup_complete_freezes_what_start_up_built(unfrozen: None) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        assert gc.get_freeze_count() == 0  # not before the app's own start-up ran
        await send({"type": "lifespan.startup.complete"})

    sent, frozen = await _lifespan(FastPath(app, Quart(__name__)))

    assert sent == ["lifespan.startup.complete"]
    assert frozen[0] > 0  # frozen before the server hears the app started


async def test_a_failed_startup_freezes_nothing(unfrozen: None) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    sent, frozen = await _lifespan(FastPath(app, Quart(__name__)))

    assert sent == ["lifespan.startup.failed"]
    assert frozen == [0]
