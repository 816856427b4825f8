"""The back office meets the cart: stock and kind on the product form, a cart order's
lines, Stripe's totals and address on its page and in the CSV, refunds up to what was paid."""

from __future__ import annotations

import csv
import io
import json

from quart import Quart

from storefront.carts import LineRequest
from storefront.orders import OrderStatus
from tests.admin.support import add_staff, session_csrf, sign_in


async def signed_in(shop: Quart):  # type: ignore[no-untyped-def]
    await add_staff(shop)
    client = shop.test_client()
    await sign_in(client)
    return client, await session_csrf(client)


async def test_the_product_form_sets_stock_and_kind_and_an_edit_keeps_them(shop: Quart) -> None:
    client, token = await signed_in(shop)
    db = shop.extensions["db"]
    form = {
        "csrf_token": token,
        "slug": "tea-towel",
        "name": "Tea towel",
        "price": "9.50",
        "currency": "eur",
        "active": "on",
        "stock": "7",
        "kind": "physical",
    }
    assert (await client.post("/admin/products/new", form=form)).status_code == 303
    towel = await db.product_by_slug("tea-towel")
    assert (towel.stock, towel.physical) == (7, True)
    page = await (await client.get("/admin/products/tea-towel")).get_data(as_text=True)
    assert 'name="stock" value="7"' in page and 'value="physical" selected' in page
    # Taking it off sale keeps its stock and kind (the form's values are saved whole).
    gone = await client.post("/admin/products/tea-towel/deactivate", form={"csrf_token": token})
    assert gone.status_code == 303
    towel = await db.product_by_slug("tea-towel")
    assert (towel.active, towel.stock, towel.physical) == (False, 7, True)
    # A bad stock is refused on the form and changes nothing.
    bad = await client.post("/admin/products/tea-towel", form={**form, "stock": "-1"})
    assert bad.status_code == 400 and "stock" in await bad.get_data(as_text=True)
    assert (await db.product_by_slug("tea-towel")).stock == 7


async def test_a_cart_orders_lines_totals_and_address_show_and_export(shop: Quart) -> None:
    client, _ = await signed_in(shop)
    db = shop.extensions["db"]
    mug = await db.product_by_slug("mug")
    lines = [LineRequest(mug.id, mug.name, 2, mug.unit_amount)]
    order = await db.open_lines_order(lines, mug.currency, None)
    assert await db.transition(order.id, OrderStatus.PAID, source="test")
    address = {"line1": "1 Quay Street", "city": "Galway", "country": "IE"}
    # What a paid webhook records from Stripe's session (shipping 5.00, tax 1.00).
    await db.execute(
        "UPDATE orders SET amount_paid = ?, amount_shipping = ?, amount_tax = ?,"
        " shipping_name = ?, shipping_address = ?, payment_intent = ? WHERE id = ?",
        (
            2 * mug.unit_amount + 600,
            500,
            100,
            "Ada Shopper",
            json.dumps(address),
            "pi_cart",
            order.id,
        ),
    )
    page = await (await client.get(f"/admin/orders/{order.id}")).get_data(as_text=True)
    assert order.order_number and order.order_number in page
    assert f"2 \u00d7 {mug.name} (mug)" in page
    assert "Ada Shopper, 1 Quay Street, Galway, IE" in page
    paid = await db.order_by_id(order.id)
    # A refund may give back all that was paid, shipping and tax included.
    assert paid.refundable == 2 * mug.unit_amount + 600
    exported = await client.get("/admin/orders.csv?status=paid")
    rows = list(csv.DictReader(io.StringIO(await exported.get_data(as_text=True))))
    row = next(r for r in rows if r["id"] == str(order.id))
    assert row["order_number"] == order.order_number
    assert row["amount_paid"] == str(2 * mug.unit_amount + 600)
    assert row["ship_to"] == "Ada Shopper, 1 Quay Street, Galway, IE"


async def test_odd_searches_and_a_nul_in_a_note_are_answered_not_crashed(shop: Quart) -> None:
    client, token = await signed_in(shop)
    db = shop.extensions["db"]
    for search in ("#99999999999999999999999", "a\x00b", "%"):
        page = await client.get("/admin/", query_string={"q": search})
        assert page.status_code == 200, search
    mug = await db.product_by_slug("mug")
    order = await db.open_order(mug.id, mug.unit_amount, mug.currency, None)
    assert await db.transition(order.id, OrderStatus.PAID, source="test")
    answer = await client.post(
        f"/admin/orders/{order.id}/fulfil",
        form={"csrf_token": token, "action": "shipped", "note": "parcel\x00 1"},
    )
    assert answer.status_code == 400 and "NUL" in await answer.get_data(as_text=True)
    assert (await db.order_by_id(order.id)).fulfilment.value == "unfulfilled"
