"""Shipping, promotion codes, tax and the saved catalog, through the SDK and the hosted page.

One module-scoped run (``shop``) goes through every step a shop with a cart takes; the
tests then check the amounts, the objects and every body against the schema contract.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from .support import Sandbox, session_params
from .test_schemas import Bodies

CARD = {
    "email": "shopper@example.com",
    "number": "4242424242424242",
    "expiry": "12/34",
    "cvc": "123",
    "name": "Ada Shopper",
}
ADDRESS = {
    "name": "Ada Shopper",
    "line1": "Hauptstraße 1",
    "line2": "2. OG",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
CART = [
    {
        "quantity": 2,
        "price_data": {
            "currency": "eur",
            "unit_amount": 1999,
            "product_data": {"name": "Enamel mug"},
        },
    },
    {
        "quantity": 1,
        "price_data": {
            "currency": "eur",
            "unit_amount": 1250,
            "product_data": {"name": "Tea towel"},
        },
    },
]


@dataclass
class Shop:
    """Everything one commerce run saw: answers, webhook payloads, ids."""

    sandbox: Sandbox
    answers: Bodies
    payloads: Bodies
    ids: dict[str, str]
    pages: dict[str, str]
    statuses: dict[str, int]


async def post(http: aiohttp.ClientSession, url: str, form: dict[str, str]) -> tuple[int, str]:
    async with http.post(url, data=form, allow_redirects=False) as response:
        return response.status, await response.text()


async def _catalog(sandbox: Sandbox, answers: Bodies, ids: dict[str, str]) -> None:
    """Products, prices, a shipping rate, coupons and promotion codes, created and read."""
    v1 = sandbox.client.v1
    product = answers.answer(
        "product create",
        await v1.products.create_async(
            params={
                "name": "Teapot",
                "description": "Cast iron",
                "images": ["https://example.com/teapot.png"],
                "metadata": {"sku": "TP-1"},
                "default_price_data": {"currency": "eur", "unit_amount": "4500"},
            }
        ),
    )
    ids["product"], ids["price"] = product.id, str(product.default_price)
    old = answers.answer(
        "price create",
        await v1.prices.create_async(
            params={"product": product.id, "currency": "eur", "unit_amount": 5000, "active": False}
        ),
    )
    ids["old_price"] = old.id
    answers.answer("product retrieve", await v1.products.retrieve_async(product.id))
    answers.answer(
        "products list",
        await v1.products.list_async(params={"active": True, "expand": ["data.default_price"]}),
    )
    answers.answer("price retrieve", await v1.prices.retrieve_async(ids["price"]))
    answers.answer("prices active", await v1.prices.list_async(params={"active": True}))
    answers.answer("prices inactive", await v1.prices.list_async(params={"active": False}))
    rate = answers.answer(
        "shipping rate create",
        await v1.shipping_rates.create_async(
            params={
                "display_name": "Express",
                "type": "fixed_amount",
                "fixed_amount": {"amount": 1500, "currency": "eur"},
                "delivery_estimate": {
                    "minimum": {"unit": "business_day", "value": 1},
                    "maximum": {"unit": "business_day", "value": 2},
                },
            }
        ),
    )
    ids["express"] = rate.id
    answers.answer("shipping rate retrieve", await v1.shipping_rates.retrieve_async(rate.id))
    answers.answer("shipping rates list", await v1.shipping_rates.list_async())
    coupon = answers.answer(
        "coupon create",
        await v1.coupons.create_async(
            params={"percent_off": 10, "duration": "once", "name": "Ten off", "max_redemptions": 5}
        ),
    )
    fixed = answers.answer(
        "coupon amount_off",
        await v1.coupons.create_async(
            params={"amount_off": 500, "currency": "usd", "duration": "once"}
        ),
    )
    ids["coupon"], ids["usd_coupon"] = coupon.id, fixed.id
    answers.answer("coupon retrieve", await v1.coupons.retrieve_async(coupon.id))
    answers.answer("coupons list", await v1.coupons.list_async())
    promo = answers.answer(
        "promotion code create",
        await v1.promotion_codes.create_async(
            params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "TEATIME"}
        ),
    )
    usd = await v1.promotion_codes.create_async(
        params={"promotion": {"type": "coupon", "coupon": fixed.id}, "code": "DOLLARS"}
    )
    ids["promo"], ids["usd_promo"] = promo.id, usd.id
    answers.answer("promotion code retrieve", await v1.promotion_codes.retrieve_async(promo.id))
    answers.answer(
        "promotion codes list", await v1.promotion_codes.list_async(params={"code": "TEATIME"})
    )


async def _journey(shop: Shop, http: aiohttp.ClientSession) -> None:
    """A cart of three lines: address, a second rate, a code, tax, then a card payment."""
    sessions = shop.sandbox.client.v1.checkout.sessions
    answers, ids = shop.answers, shop.ids
    everything = {
        "expand": [
            "line_items.data.discounts",
            "line_items.data.taxes",
            "payment_intent",
            "total_details.breakdown",
        ]
    }
    session = answers.answer(
        "session create",
        await sessions.create_async(
            params=session_params(
                line_items=[*CART, {"price": ids["price"], "quantity": 1}],
                shipping_address_collection={"allowed_countries": ["DE", "FR", "NL"]},
                shipping_options=[
                    {
                        "shipping_rate_data": {
                            "display_name": "Standard",
                            "type": "fixed_amount",
                            "fixed_amount": {"amount": 495, "currency": "eur"},
                        }
                    },
                    {"shipping_rate": ids["express"]},
                ],
                allow_promotion_codes=True,
                automatic_tax={"enabled": True},
                expand=["total_details.breakdown"],
            )
        ),
    )
    ids["session"] = session.id
    for label, path, form in (
        ("pay before address", "card", CARD),
        ("country not allowed", "address", {**ADDRESS, "country": "US"}),
        ("unknown code", "promotion_code", {"code": "NOPE"}),
        ("code in another currency", "promotion_code", {"code": "DOLLARS"}),
        ("address", "address", {**ADDRESS, "shipping_rate": ids["express"]}),
        ("code", "promotion_code", {"code": "teatime"}),
    ):
        shop.statuses[label], shop.pages[label] = await post(http, f"{session.url}/{path}", form)
    async with http.get(session.url) as response:
        shop.pages["page"] = await response.text()
        shop.pages["cache-control"] = response.headers.get("Cache-Control", "")
    answers.answer("before payment", await sessions.retrieve_async(session.id, params=everything))
    shop.statuses["pay"], _ = await post(http, f"{session.url}/card", CARD)
    await shop.sandbox.state.wait_idle(10)
    answers.answer("after payment", await sessions.retrieve_async(session.id, params=everything))
    answers.answer("line items", await sessions.line_items.list_async(session.id))
    answers.answer(
        "line items expanded",
        await sessions.line_items.list_async(
            session.id, params={"expand": ["data.discounts", "data.taxes"]}
        ),
    )
    answers.answer("listed", await sessions.list_async(params={"limit": 5}))
    v1 = shop.sandbox.client.v1
    answers.answer("coupon after", await v1.coupons.retrieve_async(ids["coupon"]))
    answers.answer("promo after", await v1.promotion_codes.retrieve_async(ids["promo"]))
    # A set discount, a coupon without a code, and tax from a billing country alone.
    direct = answers.answer(
        "session with coupon",
        await sessions.create_async(
            params=session_params(
                discounts=[{"coupon": ids["coupon"]}], automatic_tax={"enabled": True}
            )
        ),
    )
    ids["direct"] = direct.id
    shop.statuses["billing"], _ = await post(
        http, f"{direct.url}/address", {"country": "NL", "postal_code": "1011"}
    )
    shop.statuses["direct pay"], _ = await post(http, f"{direct.url}/card", CARD)
    await shop.sandbox.state.wait_idle(10)
    answers.answer("direct after", await sessions.retrieve_async(direct.id, params=everything))
    answers.answer("coupon end", await v1.coupons.retrieve_async(ids["coupon"]))


@pytest.fixture(scope="module")
async def shop(make_sandbox: Callable[..., Any]) -> AsyncIterator[Shop]:
    """A private sandbox taken through the catalog and a cart's whole checkout once."""
    async with make_sandbox() as sandbox, aiohttp.ClientSession() as http:
        run = Shop(sandbox, Bodies(), Bodies(), {}, {}, {})
        await _catalog(sandbox, run.answers, run.ids)
        await _journey(run, http)
        for received in sandbox.receiver.received:
            run.payloads.add(f"webhook {received.event['type']}", json.loads(received.body))
        yield run


def body(shop: Shop, label: str) -> dict[str, Any]:
    """The last answer with this label."""
    return [b for name, b in shop.answers.bodies if name == label][-1]


# -- the schema contract --------------------------------------------------------------------


async def test_every_commerce_answer_is_valid(shop: Shop) -> None:
    kinds = {b.get("object") for _, b in shop.answers.bodies}
    assert {"product", "price", "shipping_rate", "coupon", "promotion_code"} <= kinds
    assert len(shop.answers.bodies) > 25
    shop.answers.assert_valid()


async def test_every_commerce_webhook_payload_is_valid(shop: Shop) -> None:
    completed = [b for _, b in shop.payloads.bodies if b["type"] == "checkout.session.completed"]
    assert len(completed) == 2
    shop.payloads.assert_valid()


def test_schema_contract_catches_a_wrong_commerce_field() -> None:
    rate = {"object": "shipping_rate", "id": "shr_1", "type": "per_kg"}
    bodies = Bodies()
    bodies.add("broken rate", rate)
    assert any("type" in problem for problem in bodies.invalid())


# -- amounts ---------------------------------------------------------------------------------


def check_consistent(session: dict[str, Any]) -> None:
    """Every total of a session agrees with its lines, shipping, discount and tax."""
    lines = session["line_items"]["data"]
    details = session["total_details"]
    assert session["amount_subtotal"] == sum(line["amount_subtotal"] for line in lines)
    assert details["amount_discount"] == sum(line["amount_discount"] for line in lines)
    shipping = session["shipping_cost"]["amount_subtotal"] if session["shipping_cost"] else 0
    assert details["amount_shipping"] == shipping
    shipping_tax = session["shipping_cost"]["amount_tax"] if session["shipping_cost"] else 0
    assert details["amount_tax"] == sum(line["amount_tax"] for line in lines) + shipping_tax
    exclusive = all(line["price"]["tax_behavior"] != "inclusive" for line in lines)
    if exclusive:
        assert session["amount_total"] == (
            session["amount_subtotal"]
            - details["amount_discount"]
            + details["amount_shipping"]
            + details["amount_tax"]
        )
    for line in lines:
        assert line["amount_total"] == (
            line["amount_subtotal"] - line["amount_discount"] + line["amount_tax"]
        )
        assert sum(d["amount"] for d in line["discounts"]) == line["amount_discount"]
        assert sum(t["amount"] for t in line["taxes"]) == line["amount_tax"]
    breakdown = details["breakdown"]
    assert sum(d["amount"] for d in breakdown["discounts"]) == details["amount_discount"]
    assert sum(t["amount"] for t in breakdown["taxes"]) == details["amount_tax"]


async def test_the_cart_is_priced_with_code_express_shipping_and_german_vat(shop: Shop) -> None:
    paid = body(shop, "after payment")
    check_consistent(paid)
    # 2 x 19.99 + 12.50 + 45.00 = 97.48; 10 % off = 9.75; express 15.00;
    # VAT 19 % per line, rounded per line: 6.84 + 2.14 + 7.70, on shipping 2.85 = 19.53;
    # total 87.73 + 15.00 + 19.53 = 122.26.
    assert paid["amount_subtotal"] == 9748
    assert paid["total_details"] == {
        "amount_discount": 975,
        "amount_shipping": 1500,
        "amount_tax": 1953,
        "breakdown": paid["total_details"]["breakdown"],
    }
    assert paid["amount_total"] == 12226
    assert paid["shipping_cost"] == {
        "amount_subtotal": 1500,
        "amount_tax": 285,
        "amount_total": 1785,
        "shipping_rate": shop.ids["express"],
        "taxes": paid["shipping_cost"]["taxes"],
    }
    assert paid["automatic_tax"]["status"] == "complete"
    assert paid["discounts"] == [{"coupon": None, "promotion_code": shop.ids["promo"]}]
    lines = paid["line_items"]["data"]
    assert [line["amount_discount"] for line in lines] == [400, 125, 450]
    assert lines[2]["price"]["id"] == shop.ids["price"]
    assert lines[2]["description"] == "Teapot"
    rate = lines[0]["taxes"][0]["rate"]
    assert (rate["country"], rate["percentage"], rate["inclusive"]) == ("DE", 19.0, False)


async def test_the_payment_charges_the_session_total(shop: Shop) -> None:
    paid = body(shop, "after payment")
    assert shop.statuses["pay"] == 303
    assert paid["payment_status"] == "paid"
    assert paid["payment_intent"]["amount"] == paid["amount_total"] == 12226
    completed = next(
        b["data"]["object"]
        for _, b in shop.payloads.bodies
        if b["type"] == "checkout.session.completed"
        and b["data"]["object"]["id"] == shop.ids["session"]
    )
    assert completed["amount_total"] == 12226
    assert completed["total_details"] == {
        "amount_discount": 975,
        "amount_shipping": 1500,
        "amount_tax": 1953,
    }
    charge = shop.sandbox.state.sessions[shop.ids["session"]].charge
    assert charge is not None and charge.to_stripe()["amount"] == 12226


async def test_the_address_and_rate_are_recorded_as_stripe_does(shop: Shop) -> None:
    paid = body(shop, "after payment")
    address = {
        "city": "Berlin",
        "country": "DE",
        "line1": "Hauptstraße 1",
        "line2": "2. OG",
        "postal_code": "10115",
        "state": None,
    }
    assert paid["collected_information"]["shipping_details"] == {
        "address": address,
        "name": "Ada Shopper",
    }
    assert paid["customer_details"]["address"] == address
    assert paid["shipping_address_collection"] == {"allowed_countries": ["DE", "FR", "NL"]}
    options = paid["shipping_options"]
    assert [o["shipping_amount"] for o in options] == [495, 1500]
    assert options[1]["shipping_rate"] == shop.ids["express"]
    assert options[0]["shipping_rate"].startswith("shr_")


async def test_before_the_address_the_first_rate_is_chosen_and_tax_waits(shop: Shop) -> None:
    created = body(shop, "session create")
    assert created["automatic_tax"]["status"] == "requires_location_inputs"
    assert created["shipping_cost"]["amount_subtotal"] == 495
    assert created["total_details"]["amount_tax"] == 0
    assert created["amount_total"] == 9748 + 495
    assert created["allow_promotion_codes"] is True
    assert created["collected_information"] is None


async def test_redemptions_are_counted_once_paid(shop: Shop) -> None:
    assert body(shop, "coupon create")["times_redeemed"] == 0
    assert body(shop, "coupon after")["times_redeemed"] == 1
    # Then the session with the coupon itself.
    assert body(shop, "coupon end")["times_redeemed"] == 2
    assert body(shop, "promo after")["times_redeemed"] == 1


async def test_a_set_coupon_and_a_billing_country_price_the_session(shop: Shop) -> None:
    direct = body(shop, "direct after")
    assert (shop.statuses["billing"], shop.statuses["direct pay"]) == (303, 303)
    check_consistent(direct)
    # 2 x 19.99 = 39.98; 10 % off = 4.00; NL 21 % of 35.98 = 7.56.
    assert (direct["amount_subtotal"], direct["amount_total"]) == (3998, 4354)
    assert direct["discounts"] == [{"coupon": shop.ids["coupon"], "promotion_code": None}]
    assert direct["customer_details"]["address"]["country"] == "NL"
    assert direct["collected_information"] is None
    assert direct["shipping_cost"] is None


async def test_the_hosted_page_refuses_what_stripe_refuses(shop: Shop) -> None:
    assert shop.statuses["pay before address"] == 400
    assert "Enter a shipping address first." in shop.pages["pay before address"]
    assert shop.statuses["country not allowed"] == 400
    assert "We cannot ship to this country." in shop.pages["country not allowed"]
    assert shop.statuses["unknown code"] == 400
    assert "This code is invalid." in shop.pages["unknown code"]
    assert shop.statuses["code in another currency"] == 400
    assert "This code is not valid for this purchase." in shop.pages["code in another currency"]
    assert (shop.statuses["address"], shop.statuses["code"]) == (303, 303)


async def test_the_hosted_page_shows_every_line_and_total(shop: Shop) -> None:
    page = shop.pages["page"]
    for text in (
        "Qty 2 \u00d7 €19.99",
        "€39.98",
        "Qty 1 \u00d7 €12.50",
        "Teapot",
        "Qty 1 \u00d7 €45.00",
        "€97.48",  # subtotal
        "\u2212€9.75",  # discount
        "TEATIME",
        "Express",
        "€15.00",
        "€19.53",  # tax
        "€122.26",  # total
    ):
        assert text in page, text
    assert 'value="DE" selected' in page
    assert f'value="{shop.ids["express"]}" checked' in page
    assert shop.pages["cache-control"] == "no-store"


async def test_line_items_list_carries_the_same_amounts(shop: Shop) -> None:
    expanded = body(shop, "after payment")["line_items"]["data"]
    plain = body(shop, "line items")["data"]
    listed = body(shop, "line items expanded")["data"]
    assert listed == expanded
    amounts = ("amount_subtotal", "amount_discount", "amount_tax", "amount_total")
    assert [[p[a] for a in amounts] for p in plain] == [[e[a] for a in amounts] for e in expanded]
    # Discounts and taxes of a line are sent only when expanded, as Stripe does.
    assert all("discounts" not in p and "taxes" not in p for p in plain)
    discount = listed[0]["discounts"][0]["discount"]
    assert discount["source"] == {"coupon": shop.ids["coupon"], "type": "coupon"}
    assert discount["promotion_code"] == shop.ids["promo"]


async def test_the_catalog_lists_filter_and_expand(shop: Shop) -> None:
    listed = body(shop, "products list")
    teapot = listed["data"][0]
    assert teapot["default_price"]["id"] == shop.ids["price"]
    assert teapot["default_price"]["unit_amount"] == 4500
    active = [p["id"] for p in body(shop, "prices active")["data"]]
    inactive = [p["id"] for p in body(shop, "prices inactive")["data"]]
    assert (shop.ids["price"] in active, shop.ids["old_price"] in active) == (True, False)
    assert inactive == [shop.ids["old_price"]]
    promo = body(shop, "promotion code create")
    assert promo["promotion"] == {"coupon": shop.ids["coupon"], "type": "coupon"}
    assert promo["code"] == "TEATIME"
    assert body(shop, "coupon create")["percent_off"] == 10.0


async def test_the_complete_helper_enters_address_rate_and_code(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    v1 = sandbox.client.v1
    coupon = await v1.coupons.create_async(params={"amount_off": 1000, "currency": "eur"})
    code = f"HELPER{coupon.id}"
    await v1.promotion_codes.create_async(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": code}
    )
    express = await v1.shipping_rates.create_async(
        params={"display_name": "Express", "fixed_amount": {"amount": 1500, "currency": "eur"}}
    )
    session = await v1.checkout.sessions.create_async(
        params=session_params(
            shipping_address_collection={"allowed_countries": ["DE", "FR"]},
            shipping_options=[{"shipping_rate": express.id}],
            allow_promotion_codes=True,
            automatic_tax={"enabled": True},
        )
    )
    url = f"{sandbox.url}/_sandbox/sessions/{session.id}/complete"
    async with http.post(url, data={"country": "FR", "promotion_code": "NOPE"}) as response:
        refused = await response.json()
        assert response.status == 400, refused
    assert refused["error"]["param"] == "promotion_code"
    record = sandbox.state.sessions[session.id]
    assert (record.status, record.shipping_details, record.discount) == ("open", None, None)
    form = {"country": "FR", "shipping_rate": express.id, "promotion_code": code}
    async with http.post(url, data=form) as response:
        paid = await response.json()
        assert response.status == 200, paid
    # 39.98 - 10.00 = 29.98; TVA 20 % = 6.00; express 15.00 + 3.00 TVA.
    assert paid["shipping_cost"]["shipping_rate"] == express.id
    assert paid["collected_information"]["shipping_details"]["address"]["country"] == "FR"
    assert paid["total_details"] == {
        "amount_discount": 1000,
        "amount_shipping": 1500,
        "amount_tax": 900,
    }
    assert paid["amount_total"] == 2998 + 1500 + 900
    assert paid["payment_status"] == "paid"


async def test_inclusive_prices_keep_their_total_and_show_the_tax_inside(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sessions = sandbox.client.v1.checkout.sessions
    line = {
        "quantity": 1,
        "price_data": {
            "currency": "gbp",
            "unit_amount": 1200,
            "tax_behavior": "inclusive",
            "product_data": {"name": "Scarf"},
        },
    }
    session = await sessions.create_async(
        params=session_params(line_items=[line], automatic_tax={"enabled": True})
    )
    status, _ = await post(http, f"{session.url}/address", {"country": "GB"})
    assert status == 303
    bodies = Bodies()
    expand = ["line_items.data.taxes", "total_details.breakdown"]
    got = raw_body(
        bodies.answer("inclusive", await sessions.retrieve_async(session.id, {"expand": expand}))
    )
    bodies.assert_valid()
    # 12.00 with 20 % VAT inside: 10.00 net, 2.00 tax; the shopper pays 12.00.
    assert (got["amount_subtotal"], got["amount_total"]) == (1200, 1200)
    assert got["total_details"]["amount_tax"] == 200
    tax = got["line_items"]["data"][0]["taxes"][0]
    assert (tax["amount"], tax["taxable_amount"], tax["rate"]["inclusive"]) == (200, 1000, True)
    assert got["line_items"]["data"][0]["price"]["tax_behavior"] == "inclusive"


def raw_body(answer: Any) -> dict[str, Any]:
    """The JSON an SDK call received."""
    return json.loads(answer.last_response.body)
