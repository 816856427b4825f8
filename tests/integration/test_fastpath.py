"""The catalog's fast path answers exactly as Quart does, and leaves every other request to it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from storefront.fastpath import CatalogFastPath

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

NONCE = re.compile(r'name="attempt" value="([A-Za-z0-9_-]{16,64})"')


class Counting:
    """Wraps the ASGI app behind the fast path and counts the requests it got."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.http = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.http += 1
        await self.app(scope, receive, send)


@pytest.fixture
def behind(shop: Quart) -> Counting:
    """Count what reaches Quart from behind the fast path."""
    fast = shop.asgi_app
    assert isinstance(fast, CatalogFastPath)
    fast.app = Counting(fast.app)
    return fast.app


async def answer(client: QuartClient, path: str = "/", method: str = "GET") -> tuple:
    response = await client.open(path, method=method)
    body = await response.get_data(as_text=True)
    return response.status_code, sorted((k.lower(), v) for k, v in response.headers.items()), body


def without_nonces(body: str) -> str:
    return NONCE.sub('name="attempt" value="-"', body)


async def test_cached_catalog_is_sent_as_quart_sends_it(
    client: QuartClient, behind: Counting
) -> None:
    by_quart = await answer(client)
    assert behind.http == 1  # nothing cached yet: Quart rendered the page
    fast = await answer(client)
    assert behind.http == 1  # the second came from the cache, past Quart
    assert fast[:2] == by_quart[:2]
    assert without_nonces(fast[2]) == without_nonces(by_quart[2])
    assert dict(fast[1])["content-security-policy"].startswith("default-src 'self'")
    assert dict(fast[1])["content-length"] == str(len(fast[2].encode()))
    # Every Buy form still gets a nonce of its own.
    nonces = NONCE.findall(fast[2])
    assert len(nonces) == 2 and len(set(nonces + NONCE.findall(by_quart[2]))) == 4


async def test_cart_count_comes_from_the_cookie_as_in_quart(
    shop: Quart, client: QuartClient, behind: Counting
) -> None:
    await answer(client)
    response = await client.post("/cart/add/mug", form={"quantity": "2"})
    assert response.status_code == 303
    reached = behind.http
    fast = await answer(client)
    assert behind.http == reached
    assert '<span class="cart-count">2</span>' in fast[2]
    shop.extensions["catalog_page"].invalidate()
    by_quart = await answer(client)
    assert behind.http == reached + 1
    assert without_nonces(fast[2]) == without_nonces(by_quart[2])
    # A cookie that is not the shape of our tokens is no cart, on both paths.
    client.set_cookie("localhost", "cart", "not a token")
    assert '<span class="cart-count">0</span>' in (await answer(client))[2]


@pytest.mark.parametrize(
    ("method", "path"),
    [("HEAD", "/"), ("GET", "/?page=2"), ("POST", "/"), ("GET", "/cart"), ("GET", "/healthz")],
)
async def test_everything_else_goes_to_quart(
    client: QuartClient, behind: Counting, method: str, path: str
) -> None:
    await answer(client)
    before = behind.http
    status, headers, _ = await answer(client, path, method)
    assert behind.http == before + 1
    assert dict(headers)["x-frame-options"] == "DENY"
    assert status == {"POST": 405}.get(method, 200)


async def test_a_stale_page_is_rendered_by_quart(
    shop: Quart, client: QuartClient, behind: Counting
) -> None:
    await answer(client)
    shop.extensions["catalog_page"].invalidate()
    await answer(client)
    assert behind.http == 2


async def test_a_failing_cart_read_gets_quarts_error_page(
    client: QuartClient, behind: Counting, database: Path
) -> None:
    response = await client.post("/cart/add/mug", form={"quantity": "1"})
    assert response.status_code == 303
    await answer(client)
    with sqlite3.connect(database) as conn:
        conn.execute("ALTER TABLE cart_items RENAME TO cart_items_gone")
    before = behind.http
    status, headers, body = await answer(client)
    # The fast path declined; Quart answered with its own error page and headers.
    assert behind.http == before + 1
    assert status == 500
    assert "Something went wrong" in body
    assert dict(headers)["x-content-type-options"] == "nosniff"
