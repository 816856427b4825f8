"""Stripe's checks on shipping, discounts, tax and saved prices: a 400 naming the param."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.stripe_schema import problems_any

from .support import Sandbox, session_params

STANDARD = {
    "shipping_rate_data": {
        "display_name": "Standard",
        "type": "fixed_amount",
        "fixed_amount": {"amount": 495, "currency": "eur"},
    }
}


async def saved(sandbox: Sandbox) -> dict[str, str]:
    """A coupon in usd, a code, an inactive price, a usd shipping rate: things to refuse."""
    v1 = sandbox.client.v1
    usd = await v1.coupons.create_async(params={"amount_off": 500, "currency": "usd"})
    used_up = await v1.coupons.create_async(params={"percent_off": 5, "max_redemptions": 1})
    sandbox.state.catalog.coupons[used_up.id].times_redeemed = 1
    product = await v1.products.create_async(params={"name": "Old mug"})
    old = await v1.prices.create_async(
        params={"product": product.id, "currency": "eur", "unit_amount": 900, "active": False}
    )
    rate = await v1.shipping_rates.create_async(
        params={
            "display_name": "Air",
            "fixed_amount": {"amount": 900, "currency": "usd"},
        }
    )
    return {"usd": usd.id, "used_up": used_up.id, "old": old.id, "usd_rate": rate.id}


CASES: list[tuple[str, Any, str]] = [
    (
        "shipping rate in another currency",
        lambda ids: {"shipping_options": [{"shipping_rate": ids["usd_rate"]}]},
        "shipping_options[0]",
    ),
    (
        "shipping_rate_data in another currency",
        lambda ids: {
            "shipping_options": [
                {
                    "shipping_rate_data": {
                        **STANDARD["shipping_rate_data"],
                        "fixed_amount": {"amount": 1, "currency": "usd"},
                    }
                }
            ]
        },
        "shipping_options[0]",
    ),
    (
        "both rate and rate data",
        lambda ids: {
            "shipping_options": [{"shipping_rate": ids["usd_rate"], **STANDARD}],
        },
        "shipping_options[0]",
    ),
    ("six shipping options", lambda ids: {"shipping_options": [STANDARD] * 6}, "shipping_options"),
    (
        "unknown shipping rate",
        lambda ids: {"shipping_options": [{"shipping_rate": "shr_nosuch"}]},
        "shipping_options[0][shipping_rate]",
    ),
    (
        "lowercase country",
        lambda ids: {"shipping_address_collection": {"allowed_countries": ["de"]}},
        "shipping_address_collection[allowed_countries][0]",
    ),
    (
        "no countries",
        lambda ids: {"shipping_address_collection": {"colour": "red"}},
        "shipping_address_collection[colour]",
    ),
    (
        "discounts with allow_promotion_codes",
        lambda ids: {"allow_promotion_codes": True, "discounts": [{"coupon": ids["used_up"]}]},
        "discounts",
    ),
    ("unknown coupon", lambda ids: {"discounts": [{"coupon": "NOSUCH"}]}, "discounts[0][coupon]"),
    (
        "coupon in another currency",
        lambda ids: {"discounts": [{"coupon": ids["usd"]}]},
        "discounts[0][coupon]",
    ),
    (
        "used-up coupon",
        lambda ids: {"discounts": [{"coupon": ids["used_up"]}]},
        "discounts[0][coupon]",
    ),
    (
        "automatic tax neither on nor off",
        lambda ids: {"automatic_tax": {"enabled": "maybe"}},
        "automatic_tax[enabled]",
    ),
    (
        "inactive saved price",
        lambda ids: {"line_items": [{"price": ids["old"], "quantity": 1}]},
        "line_items[0][price]",
    ),
    (
        "unknown saved price",
        lambda ids: {"line_items": [{"price": "price_nosuch", "quantity": 1}]},
        "line_items[0][price]",
    ),
    (
        "bad tax behavior",
        lambda ids: {
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 900,
                        "tax_behavior": "sometimes",
                        "product_data": {"name": "Mug"},
                    },
                }
            ]
        },
        "line_items[0][price_data][tax_behavior]",
    ),
]


@pytest.mark.parametrize(("case", "params", "param"), CASES, ids=[c[0] for c in CASES])
async def test_session_create_refuses_bad_commerce_params(
    sandbox: Sandbox, case: str, params: Any, param: str
) -> None:
    ids = await saved(sandbox)
    before = len(sandbox.state.sessions)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await sandbox.client.v1.checkout.sessions.create_async(
            params=session_params(**params(ids))
        )
    assert caught.value.param == param, caught.value.user_message
    assert caught.value.http_status in (400, 404)
    assert not problems_any(caught.value.json_body)
    assert len(sandbox.state.sessions) == before


CATALOG_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("coupon with both", "coupons", {"percent_off": 5, "amount_off": 5}, "percent_off"),
    ("coupon without currency", "coupons", {"amount_off": 5}, "currency"),
    ("coupon over 100 %", "coupons", {"percent_off": "100.5"}, "percent_off"),
    ("coupon repeating", "coupons", {"percent_off": 5, "duration": "repeating"}, "duration"),
    ("coupon redeem_by past", "coupons", {"percent_off": 5, "redeem_by": 1}, "redeem_by"),
    ("code without promotion", "promotion_codes", {"code": "X"}, "promotion"),
    (
        "code for unknown coupon",
        "promotion_codes",
        {"promotion": {"type": "coupon", "coupon": "NOSUCH"}},
        "promotion[coupon]",
    ),
    (
        "old-style coupon param",
        "promotion_codes",
        {"coupon": "NOSUCH", "promotion": {"type": "coupon", "coupon": "NOSUCH"}},
        "coupon",
    ),
    ("rate without amount", "shipping_rates", {"display_name": "Air"}, "fixed_amount"),
    (
        "rate per kilo",
        "shipping_rates",
        {"display_name": "Air", "type": "per_kg", "fixed_amount": {"amount": 1}},
        "type",
    ),
    ("product without name", "products", {"description": "x"}, "name"),
    ("price without product", "prices", {"currency": "eur", "unit_amount": 1}, "product"),
    (
        "price of unknown product",
        "prices",
        {"product": "prod_nosuch", "currency": "eur", "unit_amount": 1},
        "product",
    ),
]


@pytest.mark.parametrize(
    ("case", "resource", "params", "param"), CATALOG_CASES, ids=[c[0] for c in CATALOG_CASES]
)
async def test_catalog_create_refuses_bad_params(
    sandbox: Sandbox, case: str, resource: str, params: dict[str, Any], param: str
) -> None:
    service = getattr(sandbox.client.v1, resource)
    store = getattr(sandbox.state.catalog, resource)
    before = len(store)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await service.create_async(params=params)
    assert caught.value.param == param, caught.value.user_message
    assert not problems_any(caught.value.json_body)
    assert len(store) == before


async def test_a_second_active_code_with_the_same_text_is_refused(sandbox: Sandbox) -> None:
    v1 = sandbox.client.v1
    coupon = await v1.coupons.create_async(params={"percent_off": 5})
    promotion = {"type": "coupon", "coupon": coupon.id}
    await v1.promotion_codes.create_async(params={"promotion": promotion, "code": "ONCEONLY"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await v1.promotion_codes.create_async(params={"promotion": promotion, "code": "ONCEONLY"})
    assert caught.value.param == "code"


async def test_unknown_catalog_ids_are_404(sandbox: Sandbox) -> None:
    v1 = sandbox.client.v1
    for service, object_id in (
        (v1.products, "prod_nosuch"),
        (v1.prices, "price_nosuch"),
        (v1.shipping_rates, "shr_nosuch"),
        (v1.coupons, "NOSUCH"),
        (v1.promotion_codes, "promo_nosuch"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            await service.retrieve_async(object_id)
        assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
