"""Products from the back office: created, edited, taken off sale; bad input saves nothing."""

from __future__ import annotations

import pytest
from quart import Quart

from tests.admin.support import add_staff, session_csrf, sign_in


async def signed_in(shop: Quart):  # type: ignore[no-untyped-def]
    await add_staff(shop)
    client = shop.test_client()
    await sign_in(client)
    return client, await session_csrf(client)


async def catalog(shop: Quart) -> str:
    return await (await shop.test_client().get("/")).get_data(as_text=True)


async def test_a_new_product_is_on_the_catalog_at_once_and_can_be_edited_and_retired(
    shop: Quart,
) -> None:
    client, token = await signed_in(shop)
    assert "Tea towel" not in await catalog(shop)  # renders (and caches) the page first
    form = {
        "csrf_token": token,
        "slug": "tea-towel",
        "name": "Tea towel",
        "price": "9.50",
        "currency": "EUR",
        "description": "Linen",
        "active": "on",
    }
    assert (await client.post("/admin/products/new", form=form)).status_code == 303
    page = await catalog(shop)
    assert "Tea towel" in page and "€9.50" in page
    edit = {**form, "name": "Linen tea towel", "price": "11"}
    assert (await client.post("/admin/products/tea-towel", form=edit)).status_code == 303
    assert "Linen tea towel" in await catalog(shop) and "€11.00" in await catalog(shop)
    gone = await client.post("/admin/products/tea-towel/deactivate", form={"csrf_token": token})
    assert gone.status_code == 303
    assert "Linen tea towel" not in await catalog(shop)
    listed = await (await client.get("/admin/products")).get_data(as_text=True)
    assert "tea-towel" in listed


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("price", "abc", "not a number"),
        ("price", "-3", "positive"),
        ("price", "1.234", "price"),
        ("currency", "euro", "currency"),
        ("slug", "Tea Towel!", "slug"),
        ("name", "", "name"),
        ("name", "Tea\x00towel", "nul"),
        ("description", "Linen\x00", "nul"),
    ],
)
async def test_bad_input_is_shown_on_the_form_and_nothing_is_saved(
    shop: Quart, field: str, value: str, says: str
) -> None:
    client, token = await signed_in(shop)
    form = {
        "csrf_token": token,
        "slug": "tea-towel",
        "name": "Tea towel",
        "price": "9.50",
        "currency": "eur",
        "active": "on",
        field: value,
    }
    answer = await client.post("/admin/products/new", form=form)
    assert answer.status_code == 400
    body = await answer.get_data(as_text=True)
    assert "Not saved:" in body and says in body.lower()
    assert await shop.extensions["db"].product_by_slug("tea-towel") is None


async def test_a_bad_edit_changes_nothing(shop: Quart) -> None:
    client, token = await signed_in(shop)
    before = await shop.extensions["db"].product_by_slug("mug")
    assert before is not None
    form = {"csrf_token": token, "name": "Mug", "price": "0", "currency": before.currency}
    assert (await client.post("/admin/products/mug", form=form)).status_code == 400
    assert await shop.extensions["db"].product_by_slug("mug") == before
