"""The header's cart count on every shop page, not only the catalog and the cart."""

from __future__ import annotations

import re

from quart.typing import TestClientProtocol as QuartClient

from storefront.store import Store


def count_in(page: str) -> str | None:
    """The number the header's cart link shows, if any."""
    found = re.search(r'id="cart-badge"[^>]*>\s*Cart <span class="cart-count">(\d+)</span>', page)
    return found.group(1) if found else None


async def test_receipt_cancelled_and_error_pages_show_the_cart_count(
    client: QuartClient, db: Store
) -> None:
    assert (await client.post("/cart/add/mug", form={"quantity": "3"})).status_code == 303
    assert (await client.post("/cart/add/poster", form={"quantity": "1"})).status_code == 303
    assert (await client.post("/checkout/mug", form={"attempt": "a" * 20})).status_code == 303
    row = await db.fetch_one("SELECT token FROM orders")  # type: ignore[attr-defined]
    assert row is not None
    for url in (f"/orders/{row['token']}", f"/orders/{row['token']}/cancelled", "/cart", "/"):
        page = await (await client.get(url)).get_data(as_text=True)
        assert count_in(page) == "4", url
    # Error pages link the cart without a count: the database may be what failed.
    for url in ("/no-such-page", "/orders/not-an-order"):
        page = await (await client.get(url)).get_data(as_text=True)
        assert 'id="cart-badge"' in page and count_in(page) is None, url


async def test_without_a_cart_the_pages_show_none_in_it(client: QuartClient, db: Store) -> None:
    assert (await client.post("/checkout/mug", form={"attempt": "b" * 20})).status_code == 303
    row = await db.fetch_one("SELECT token FROM orders")  # type: ignore[attr-defined]
    assert row is not None
    page = await (await client.get(f"/orders/{row['token']}")).get_data(as_text=True)
    assert count_in(page) == "0"
    # A cookie of the wrong shape is no cart, and no error either.
    client.set_cookie("localhost", "cart", "forged")
    page = await (await client.get(f"/orders/{row['token']}/cancelled")).get_data(as_text=True)
    assert count_in(page) == "0"
