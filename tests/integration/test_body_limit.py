"""Bodies stop at MAX_CONTENT_LENGTH on every Quart version, and the sender gets the 413."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from quart.testing import QuartClient

from storefront.store.sqlite import SQLiteStore
from tests.live import LiveStack
from tests.reliability.conftest import snapshot
from tests.shop import event, signed

CHUNK = 64 * 1024  # five of these pass the shop's 256 KiB limit


async def first_answer(client: QuartClient, path: str, content_type: str, chunks: int) -> int:
    """Stream ``chunks`` chunks without ending the body; return the status that comes back."""
    headers = {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
    async with client.request(path, method="POST", headers=headers) as connection:
        for _ in range(chunks):
            await connection.send(b"x" * CHUNK)
        # A hang here is the bug this guards against; the body is never finished.
        await asyncio.wait_for(connection.receive(), timeout=10)
        status = connection.status_code
        # Answered before the body ended: the client is told the connection goes.
        assert connection.headers is not None
        assert connection.headers.get("Connection") == "close"
        # The sender gives up; the shop then stops reading the rest and finishes.
        await connection.disconnect()
    assert status is not None
    return status


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/webhook", "application/json"),
        ("/checkout/mug", "application/x-www-form-urlencoded"),
        ("/checkout/mug", "multipart/form-data; boundary=xyz"),
    ],
)
async def test_an_endless_streamed_body_is_413_and_changes_nothing(
    client: QuartClient, db: SQLiteStore, path: str, content_type: str
) -> None:
    before = await snapshot(db)
    assert await first_answer(client, path, content_type, chunks=5) == 413
    assert await snapshot(db) == before


async def test_a_streamed_body_under_the_limit_arrives_whole(
    client: QuartClient, db: SQLiteStore
) -> None:
    body, header = signed(event("customer.created", {"id": "cus_1"}, "evt_streamed"))
    async with client.request(
        "/webhook",
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": header,
            "Transfer-Encoding": "chunked",
        },
    ) as connection:
        data = body.encode()
        for start in range(0, len(data), 7):
            await connection.send(data[start : start + 7])
        await connection.send_complete()
    response = await connection.as_response()
    # The signature covers every byte, so a 200 means the body came through unchanged.
    assert response.status_code == 200, await response.get_data()
    assert (await response.get_json())["result"] == "ignored"
    row = await db.fetch_one("SELECT count(*) AS n FROM webhook_events")
    assert row is not None and row["n"] == 1


async def test_a_real_client_sending_far_past_the_limit_reads_the_413(tmp_path: Path) -> None:
    # Answered before most of the body is read: unless the shop reads the rest before
    # closing, the kernel resets the connection and the sender sees that, not the 413.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b"x" * CHUNK

    async with LiveStack(tmp_path / "shop.sqlite3") as stack, aiohttp.ClientSession() as http:
        shop = stack.shop_url
        for _ in range(3):
            form = {"quantity": "1", "pad": "x" * 2_000_000}
            async with http.post(f"{shop}/cart/add/enamel-mug", data=form) as response:
                assert response.status == 413
                assert response.headers["Connection"] == "close"
            headers = {"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"}
            async with http.post(f"{shop}/webhook", data=chunks(), headers=headers) as response:
                assert response.status == 413
                assert response.headers["Connection"] == "close"
        # The same client goes on over a fresh connection, and nothing was stored.
        async with http.get(f"{shop}/cart") as response:
            assert response.status == 200
        for table in ("cart_items", "webhook_events"):
            row = await stack.db.fetch_one(f"SELECT count(*) AS n FROM {table}")
            assert row is not None and row["n"] == 0
