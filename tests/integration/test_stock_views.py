"""Sold out on the catalog, Buy now refused past the stock, the CSP's image origins.

The shop on a real database (a SQLite file, a PostgreSQL database) with our fake payment
gateway (tests/fakes.py).
"""

from __future__ import annotations

import asyncio
import dataclasses

from quart.typing import TestClientProtocol as QuartClient

from storefront.catalog import NewProduct
from storefront.store.sqlite import SQLiteStore

MUG = NewProduct(slug="mug", name="Mug", unit_amount=1800, currency="eur", description="A mug")


async def test_the_last_one_sells_once_then_the_card_says_sold_out(
    client: QuartClient, db: SQLiteStore
) -> None:
    await db.save_products([dataclasses.replace(MUG, stock=1)])
    first = await client.post("/checkout/mug", form={"attempt": "a" * 20})
    assert first.status_code == 303
    second = await client.post(
        "/checkout/mug", form={"attempt": "b" * 20}, headers={"HX-Request": "true"}
    )
    assert second.status_code == 409
    assert "Mug is sold out" in await second.get_data(as_text=True)
    assert (await db.stock_report())["mug"] == (1, 1, 1)
    await asyncio.sleep(1.1)  # the catalog is rendered at most once a second
    page = await (await client.get("/")).get_data(as_text=True)
    card = page[page.index('id="product-mug"') :]
    assert "Sold out" in card
    assert 'type="submit" disabled' in card


async def test_img_src_allows_exactly_the_catalogs_image_origins(
    client: QuartClient, db: SQLiteStore
) -> None:
    await db.save_products(
        [
            dataclasses.replace(MUG, image="https://images.example.com/mug.jpg"),
            NewProduct(
                slug="cup",
                name="Cup",
                unit_amount=900,
                currency="eur",
                image="https://cdn.example.org/a/cup.png",
            ),
            NewProduct(
                slug="old",
                name="Old",
                unit_amount=900,
                currency="eur",
                image="https://retired.example.net/x.png",
                active=False,
            ),
        ]
    )
    await asyncio.sleep(1.1)
    response = await client.get("/")
    csp = response.headers["Content-Security-Policy"]
    img = next(part for part in csp.split("; ") if part.startswith("img-src"))
    assert img == "img-src 'self' data: https://cdn.example.org https://images.example.com"


async def test_static_files_have_fingerprinted_urls_and_a_long_immutable_life(
    client: QuartClient,
) -> None:
    import re

    page = await (await client.get("/cart")).get_data(as_text=True)
    css = re.search(r'href="(/static/css/shop\.css\?v=([0-9a-f]{12}))"', page)
    assert css is not None
    assert re.search(r'href="/static/img/favicon\.svg\?v=[0-9a-f]{12}"', page)
    fresh = await client.get(css.group(1))
    assert fresh.status_code == 200
    assert fresh.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # An old or missing fingerprint never gets the year-long life.
    for url in ("/static/css/shop.css?v=000000000000", "/static/css/shop.css"):
        response = await client.get(url)
        assert "immutable" not in response.headers.get("Cache-Control", "")
    assert (await client.get("/static/img/favicon.svg")).status_code == 200
