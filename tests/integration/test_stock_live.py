"""Sold out, live: open pages poll /stock/<view> and learn when a product sells out.

In-process on both backends (the fake gateway), then over real HTTP against the
sandbox (the real SDK): the poll answers 204 while nothing changed, and the changed
card's buy area out of band once the last one is gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import re
from pathlib import Path

import aiohttp
import pytest
from quart.typing import TestClientProtocol as QuartClient

from storefront.catalog import NewProduct, read_products_file
from storefront.stock_live import Level, encode, parse
from storefront.store import Store
from tests.live import ROOT, LiveStack, live_database_url

MUG = NewProduct(slug="mug", name="Mug", unit_amount=1800, currency="eur", description="A mug")
HX = {"HX-Request": "true"}


def poll_url(page: str) -> str:
    """The stock poller's URL on a page."""
    found = re.search(r'id="stock-poll"[^>]*hx-get="([^"]+)"', page)
    assert found is not None, "the page has no stock poller"
    return html.unescape(found.group(1))


def area(page: str, slug: str) -> str:
    """A card's buy area, sent out of band, from an answer."""
    start = page.index(f'id="buy-{slug}"')
    return page[start : page.index('<div class="card-actions">', start) + 2000]


async def catalog(client: QuartClient) -> str:
    await asyncio.sleep(1.1)  # the catalog is rendered at most once a second
    return await (await client.get("/")).get_data(as_text=True)


async def test_the_poll_answers_204_until_the_last_one_goes_then_the_card(
    client: QuartClient, db: Store
) -> None:
    await db.save_products([dataclasses.replace(MUG, stock=1)])
    url = poll_url(await catalog(client))
    mug = await db.product_by_slug("mug")
    assert mug is not None
    assert url == f"/stock/catalog?v={mug.id}.1.6"
    unchanged = await client.get(url, headers=HX)
    assert unchanged.status_code == 204 and await unchanged.get_data() == b""
    assert unchanged.headers["Cache-Control"] == "no-store"

    assert (await client.post("/checkout/mug", form={"attempt": "a" * 20})).status_code == 303
    changed = await client.get(url, headers=HX)
    assert changed.status_code == 200
    body = await changed.get_data(as_text=True)
    # The poller again, with the level it now shows, and the card out of band.
    assert poll_url(body) == f"/stock/catalog?v={mug.id}.0.6"
    assert 'id="buy-mug" hx-swap-oob="true"' in body
    card = area(body, "mug")
    assert "Sold out" in card and 'type="submit" disabled' in card
    assert 'id="buy-poster"' not in body  # an unlimited product never changes
    assert (await client.get(poll_url(body), headers=HX)).status_code == 204


async def test_a_low_count_changing_shows_too_but_plenty_never_polls_as_changed(
    client: QuartClient, db: Store
) -> None:
    await db.save_products([dataclasses.replace(MUG, stock=8)])
    url = poll_url(await catalog(client))
    for attempt in ("a", "b"):  # 8 → 6 left: still "plenty", nothing to show
        await client.post("/checkout/mug", form={"attempt": attempt * 20})
        assert (await client.get(url)).status_code == 204
    await client.post("/checkout/mug", form={"attempt": "c" * 20})
    body = await (await client.get(url)).get_data(as_text=True)
    assert "Only 5 left" in area(body, "mug")


@pytest.mark.parametrize(
    "v",
    ["x", "1.2", "1.7.6", "1.1.1-1.0.1", "1.1.1--2.1.1", "-".join(["1.1.1"] * 201), "1.1.1 "],
)
async def test_a_version_we_never_wrote_is_a_400(client: QuartClient, v: str) -> None:
    response = await client.get("/stock/catalog", query_string={"v": v})
    assert response.status_code == 400
    cart = await client.get("/stock/cart", query_string={"v": v})
    assert cart.status_code == 400


async def test_no_version_and_unknown_products_answer_without_error(
    client: QuartClient, db: Store
) -> None:
    assert (await client.get("/stock/catalog")).status_code == 204
    # A product gone from the shop can no longer be bought: its card says so.
    gone = await client.get("/stock/catalog", query_string={"v": "999999.6.6"})
    assert gone.status_code == 200
    assert "v=999999.0.6" in await gone.get_data(as_text=True)


def test_levels_round_trip_and_cap() -> None:
    levels = (Level(3, 0, 6), Level(12, 6, 6), Level(40, 2, 99))
    assert parse(encode(levels)) == levels
    assert Level(3, 6, 6).now(None) == Level(3, 6, 6)
    assert Level(3, 6, 6).now(50) == Level(3, 6, 6)
    assert Level(3, 6, 6).now(4) == Level(3, 4, 6)


async def test_a_refused_buy_turns_its_card_sold_out_in_the_answer(
    client: QuartClient, db: Store
) -> None:
    await db.save_products([dataclasses.replace(MUG, stock=1)])
    await client.post("/checkout/mug", form={"attempt": "a" * 20})
    refused = await client.post("/checkout/mug", form={"attempt": "b" * 20}, headers=HX)
    assert refused.status_code == 409
    body = await refused.get_data(as_text=True)
    assert "Mug is sold out" in body
    card = area(body, "mug")
    assert 'hx-swap-oob="true"' in card and "Sold out" in card and "disabled" in card


async def test_adding_a_sold_out_product_is_refused_and_turns_its_card(
    client: QuartClient, db: Store
) -> None:
    await db.save_products([dataclasses.replace(MUG, stock=1)])
    await client.post("/checkout/mug", form={"attempt": "a" * 20})
    refused = await client.post("/cart/add/mug", form={"quantity": "1"}, headers=HX)
    assert refused.status_code == 409
    body = await refused.get_data(as_text=True)
    assert "nothing was added to your cart" in body
    assert "Sold out" in area(body, "mug")
    assert "set-cookie" not in refused.headers
    plain = await client.post("/cart/add/mug", form={"quantity": "1"})
    assert plain.status_code == 409 and "<html" in await plain.get_data(as_text=True)
    assert await db.fetch_all("SELECT * FROM cart_items") == []  # type: ignore[attr-defined]


async def test_the_cart_page_polls_its_lines_and_disables_checkout_when_short(
    client: QuartClient, db: Store
) -> None:
    await db.save_products([dataclasses.replace(MUG, stock=3)])
    await client.post("/cart/add/mug", form={"quantity": "2"})
    page = await (await client.get("/cart")).get_data(as_text=True)
    url = poll_url(page)
    mug = await db.product_by_slug("mug")
    assert mug is not None and url == f"/stock/cart?v={mug.id}.2.2"
    assert re.search(r'<button class="button" type="submit">Check out', page)
    assert (await client.get(url, headers=HX)).status_code == 204

    # Another shopper takes two: one left, fewer than this cart asks for.
    other = await client.post("/checkout/mug", form={"attempt": "a" * 20})
    assert other.status_code == 303
    assert (await client.post("/checkout/mug", form={"attempt": "b" * 20})).status_code == 303
    body = await (await client.get(url, headers=HX)).get_data(as_text=True)
    assert poll_url(body) == f"/stock/cart?v={mug.id}.1.2"
    note = body[body.index('id="stock-mug"') :]
    assert note.startswith('id="stock-mug" hx-swap-oob="true"') and "Only 1 left" in note
    form = body[body.index('id="checkout-form"') :]
    assert 'hx-swap-oob="true"' in form[:400]
    assert re.search(r'type="submit" disabled>Check out', form)

    # A refused checkout says so and sends the lines' notes in the same answer.
    refused = await client.post("/cart/checkout", form={"attempt": "c" * 20}, headers=HX)
    assert refused.status_code == 409
    text = await refused.get_data(as_text=True)
    assert "only 1 of Mug left" in text and 'id="stock-mug" hx-swap-oob="true"' in text


# Over real HTTP: the shop and the sandbox on free ports, the real SDK.


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with LiveStack(
        tmp_path / "shop.sqlite3",
        database_url=live_database_url(request),
        shop_env={"STOREFRONT_STOCK_POLL_INTERVAL": "1"},
    ) as live:
        products = read_products_file(ROOT / "data" / "products.toml")
        await live.db.save_products(
            [dataclasses.replace(p, stock=1 if p.slug == "enamel-mug" else None) for p in products]
        )
        yield live


async def test_over_http_an_open_catalog_sees_the_last_mug_go(stack: LiveStack) -> None:
    async with aiohttp.ClientSession() as http:
        await asyncio.sleep(1.1)
        async with http.get(stack.shop_url) as response:
            page = await response.text()
        assert 'hx-trigger="every 1s"' in page
        url = stack.shop_url + poll_url(page)
        async with http.get(url, headers=HX) as response:
            assert response.status == 204
        async with http.post(
            f"{stack.shop_url}/checkout/enamel-mug",
            data={"attempt": "z" * 20},
            headers=HX,
            allow_redirects=False,
        ) as response:
            assert response.status == 204 and "HX-Redirect" in response.headers
        async with http.get(url, headers=HX) as response:
            assert response.status == 200
            body = await response.text()
        assert "Sold out" in area(body, "enamel-mug")
        async with http.get(stack.shop_url + poll_url(body), headers=HX) as response:
            assert response.status == 204
