"""The order list: filters, search, pages, the live fragment and the CSV export."""

from __future__ import annotations

import csv
import io

from quart import Quart

from storefront.orders import OrderStatus
from tests.admin.support import add_staff, sign_in


async def place(shop: Quart, email: str, paid: bool) -> int:
    db = shop.extensions["db"]
    product = await db.product_by_slug("mug")
    order = await db.open_order(product.id, product.unit_amount, product.currency, None)
    if paid:
        # Both backends: the store's own move, then the details Stripe would have sent.
        assert await db.transition(order.id, OrderStatus.PAID, source="test")
        await db.execute(
            "UPDATE orders SET customer_email = ?, payment_intent = ? WHERE id = ?",
            (email, f"pi_{order.id}", order.id),
        )
    return order.id


async def test_filter_search_pages_and_csv(shop: Quart) -> None:
    await add_staff(shop)
    client = shop.test_client()
    await sign_in(client)
    ids = [await place(shop, f"buyer{n}@example.com", n % 2 == 0) for n in range(30)]
    await place(shop, "=cmd|' /C calc'!A0@evil.example", True)

    page1 = await (await client.get("/admin/")).get_data(as_text=True)
    assert "31 orders" in page1 and "Page 1 of 2" in page1
    assert f"#{ids[-1]}<" in page1 and f"#{ids[0]}<" not in page1
    page2 = await (await client.get("/admin/?page=2")).get_data(as_text=True)
    assert f"#{ids[0]}<" in page2

    paid = await (await client.get("/admin/?status=paid")).get_data(as_text=True)
    assert "16 orders" in paid
    found = await (await client.get("/admin/?q=BUYER4@example")).get_data(as_text=True)
    assert "1 order<" in found and "buyer4@example.com" in found
    by_number = await (await client.get(f"/admin/?q=%23{ids[3]}")).get_data(as_text=True)
    assert "1 order<" in by_number

    # htmx polls the table alone, with the same filter.
    fragment = await client.get("/admin/?status=paid", headers={"HX-Request": "true"})
    text = await fragment.get_data(as_text=True)
    assert text.startswith('<div id="orders-table"') and 'hx-trigger="every 3s"' in text
    assert "status=paid" in text

    exported = await client.get("/admin/orders.csv?status=paid")
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await exported.get_data(as_text=True))))
    assert len(rows) == 16 and all(r["status"] == "paid" for r in rows)
    # A formula in a customer's email is neutralised for spreadsheets.
    assert any(r["email"].startswith("'=") for r in rows)


async def test_unknown_filters_and_pages_fall_back_safely(shop: Quart) -> None:
    await add_staff(shop)
    client = shop.test_client()
    await sign_in(client)
    for query in ("?status=nonsense", "?page=-1", "?page=abc", "?page=99999999999"):
        assert (await client.get("/admin/" + query)).status_code == 200
    assert (await client.get("/admin/orders/999999")).status_code == 404
