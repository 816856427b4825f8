"""Streamed bodies (no Content-Length) stop at MAX_CONTENT_LENGTH on every Quart version."""

from __future__ import annotations

import asyncio

import pytest
from quart.testing import QuartClient

from storefront.store.sqlite import SQLiteStore
from tests.reliability.conftest import snapshot
from tests.shop import event, signed

CHUNK = 64 * 1024  # five of these pass the shop's 256 KiB limit


async def first_answer(client: QuartClient, path: str, content_type: str, chunks: int) -> int:
    """Stream ``chunks`` chunks without ending the body; return the status that comes back."""
    async with client.request(
        path, method="POST", headers={"Content-Type": content_type}
    ) as connection:
        for _ in range(chunks):
            await connection.send(b"x" * CHUNK)
        # A hang here is the bug this guards against; the body is never finished.
        await asyncio.wait_for(connection.receive(), timeout=10)
        status = connection.status_code
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
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
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
