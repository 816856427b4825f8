"""``/v1`` routes for the account's catalog: products, prices, shipping rates, coupons, codes.

They join the API blueprint, so authentication, versions and idempotency are the same.
"""

from __future__ import annotations

from typing import Any

from quart import g

from .api import api, sandbox
from .catalog import (
    Catalog,
    parse_coupon,
    parse_price,
    parse_product,
    parse_promotion_code,
    parse_shipping_rate,
)
from .checkout import check_known
from .errors import invalid
from .idempotency import begin_execution, idempotent
from .listing import expansions, paginate, parse_bool

LIST_PARAMS = {"limit", "starting_after", "ending_before", "expand"}


def catalog() -> Catalog:
    """The catalog of the app serving this request."""
    return sandbox().catalog


def _newest_first(store: dict[str, Any], params: dict[str, Any]) -> list[Any]:
    items = list(reversed(store.values()))
    if "active" in params:
        wanted = parse_bool(params["active"], "active")
        items = [item for item in items if item.active is wanted]
    return items


def _check_new_id(store: dict[str, Any], object_id: str, kind: str) -> None:
    if object_id in store:
        raise invalid(
            f"A {kind} with id '{object_id}' already exists.", "id", "resource_already_exists"
        )


# -- products -----------------------------------------------------------------------------


def render_product(product: Any, wanted: set[str]) -> dict[str, Any]:
    """A product, its default price expanded when asked."""
    price = None
    if "default_price" in wanted and product.default_price:
        price = catalog().prices[product.default_price].to_stripe()
    return product.to_stripe(price)


@api.post("/products")
@idempotent
async def create_product() -> dict[str, Any]:
    """Create a product, and its default price from ``default_price_data``."""
    wanted = expansions(g.params, {"default_price"})
    state = sandbox()
    product, price = parse_product(g.params, state.now())
    _check_new_id(state.catalog.products, product.id, "product")
    begin_execution()
    state.catalog.products[product.id] = product
    if price is not None:
        state.catalog.prices[price.id] = price
    return render_product(product, wanted)


@api.get("/products/<product_id>")
async def retrieve_product(product_id: str) -> dict[str, Any]:
    """Retrieve one product."""
    check_known(g.params, {"expand"})
    wanted = expansions(g.params, {"default_price"})
    return render_product(catalog().get("product", product_id), wanted)


@api.get("/products")
async def list_products() -> dict[str, Any]:
    """List products newest first; ``active`` filters."""
    check_known(g.params, LIST_PARAMS | {"active"})
    wanted = expansions(g.params, {"default_price"}, "data.")
    items = [render_product(p, wanted) for p in _newest_first(catalog().products, g.params)]
    return paginate(items, g.params, "/v1/products", "product")


# -- prices -------------------------------------------------------------------------------


def render_price(price: Any, wanted: set[str]) -> dict[str, Any]:
    """A price, its product expanded when asked."""
    product = catalog().products[price.product].to_stripe() if "product" in wanted else None
    return price.to_stripe(product)


@api.post("/prices")
@idempotent
async def create_price() -> dict[str, Any]:
    """Create a one-time price of a saved product."""
    wanted = expansions(g.params, {"product"})
    state = sandbox()
    price = parse_price(g.params, state.now(), state.catalog)
    begin_execution()
    state.catalog.prices[price.id] = price
    return render_price(price, wanted)


@api.get("/prices/<price_id>")
async def retrieve_price(price_id: str) -> dict[str, Any]:
    """Retrieve one price."""
    check_known(g.params, {"expand"})
    wanted = expansions(g.params, {"product"})
    return render_price(catalog().get("price", price_id), wanted)


@api.get("/prices")
async def list_prices() -> dict[str, Any]:
    """List prices newest first; ``active``, ``product`` and ``currency`` filter."""
    params = g.params
    check_known(params, LIST_PARAMS | {"active", "product", "currency"})
    wanted = expansions(params, {"product"}, "data.")
    prices = _newest_first(catalog().prices, params)
    if params.get("product"):
        prices = [p for p in prices if p.product == params["product"]]
    if params.get("currency"):
        prices = [p for p in prices if p.currency == str(params["currency"]).lower()]
    items = [render_price(p, wanted) for p in prices]
    return paginate(items, params, "/v1/prices", "price")


# -- shipping rates -----------------------------------------------------------------------


@api.post("/shipping_rates")
@idempotent
async def create_shipping_rate() -> dict[str, Any]:
    """Create a fixed-amount shipping rate."""
    params = {k: v for k, v in g.params.items() if k != "expand"}
    state = sandbox()
    rate = parse_shipping_rate(params, state.now())
    begin_execution()
    state.catalog.shipping_rates[rate.id] = rate
    return rate.to_stripe()


@api.get("/shipping_rates/<rate_id>")
async def retrieve_shipping_rate(rate_id: str) -> dict[str, Any]:
    """Retrieve one shipping rate."""
    check_known(g.params, {"expand"})
    return catalog().get("shipping_rate", rate_id).to_stripe()


@api.get("/shipping_rates")
async def list_shipping_rates() -> dict[str, Any]:
    """List shipping rates newest first; ``active`` filters."""
    check_known(g.params, LIST_PARAMS | {"active"})
    rates = [r.to_stripe() for r in _newest_first(catalog().shipping_rates, g.params)]
    return paginate(rates, g.params, "/v1/shipping_rates", "shipping_rate")


# -- coupons and promotion codes ----------------------------------------------------------


@api.post("/coupons")
@idempotent
async def create_coupon() -> dict[str, Any]:
    """Create a coupon: percent_off, or amount_off with currency."""
    state = sandbox()
    coupon = parse_coupon(g.params, state.now())
    _check_new_id(state.catalog.coupons, coupon.id, "coupon")
    begin_execution()
    state.catalog.coupons[coupon.id] = coupon
    return coupon.to_stripe(state.now())


@api.get("/coupons/<coupon_id>")
async def retrieve_coupon(coupon_id: str) -> dict[str, Any]:
    """Retrieve one coupon."""
    check_known(g.params, {"expand"})
    return catalog().get("coupon", coupon_id).to_stripe(sandbox().now())


@api.get("/coupons")
async def list_coupons() -> dict[str, Any]:
    """List coupons newest first."""
    check_known(g.params, LIST_PARAMS)
    now = sandbox().now()
    coupons = [c.to_stripe(now) for c in reversed(catalog().coupons.values())]
    return paginate(coupons, g.params, "/v1/coupons", "coupon")


@api.post("/promotion_codes")
@idempotent
async def create_promotion_code() -> dict[str, Any]:
    """Create a promotion code for a coupon."""
    state = sandbox()
    promo = parse_promotion_code(g.params, state.now(), state.catalog)
    begin_execution()
    state.catalog.promotion_codes[promo.id] = promo
    return promo.to_stripe()


@api.get("/promotion_codes/<promo_id>")
async def retrieve_promotion_code(promo_id: str) -> dict[str, Any]:
    """Retrieve one promotion code."""
    check_known(g.params, {"expand"})
    return catalog().get("promotion_code", promo_id).to_stripe()


@api.get("/promotion_codes")
async def list_promotion_codes() -> dict[str, Any]:
    """List promotion codes newest first; ``active``, ``code`` and ``coupon`` filter."""
    params = g.params
    check_known(params, LIST_PARAMS | {"active", "code", "coupon"})
    promos = _newest_first(catalog().promotion_codes, params)
    if params.get("code"):
        promos = [p for p in promos if p.code.lower() == str(params["code"]).lower()]
    if params.get("coupon"):
        promos = [p for p in promos if p.coupon.id == params["coupon"]]
    items = [p.to_stripe() for p in promos]
    return paginate(items, params, "/v1/promotion_codes", "promotion_code")
