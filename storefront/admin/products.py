"""The back office's products: create, edit, take off sale; the catalog updates at once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from quart import Response, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound

from storefront.admin.auth import store
from storefront.admin.views import bp
from storefront.catalog import NewProduct, Product
from storefront.money import exponent


def format_price(amount: int, currency: str) -> str:
    """Minor units as the form's price text: 1999 eur is "19.99"."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


def _refresh_catalog() -> None:
    # The catalog page is cached for a second; the shopkeeper expects to see the change now.
    current_app.extensions["catalog_page"].invalidate()


@bp.get("/products")
async def products() -> str:
    """Every product, on sale or not."""
    return await render_template("admin/products.html", products=await store().all_products())


async def _form(product: Product | None, values: dict[str, Any], error: str | None) -> Response:
    body = await render_template(
        "admin/product_form.html", product=product, values=values, error=error
    )
    status = 400 if error else 200
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def _values(product: Product) -> dict[str, Any]:
    return {
        "slug": product.slug,
        "name": product.name,
        "description": product.description,
        "price": format_price(product.unit_amount, product.currency),
        "currency": product.currency,
        "active": product.active,
        # Kept through every save: a form without them would reset stock to unlimited.
        "stock": "" if product.stock is None else str(product.stock),
        "kind": "physical" if product.physical else "digital",
    }


@bp.route("/products/new", methods=["GET", "POST"])
async def new_product() -> Any:
    """Create a product; bad input is shown on the form and nothing is saved."""
    if request.method == "GET":
        return await _form(None, {"currency": "eur", "active": True, "kind": "digital"}, None)
    form = await request.form
    values = {
        k: str(form.get(k, ""))
        for k in ("slug", "name", "description", "price", "currency", "stock", "kind")
    }
    values["active"] = form.get("active") == "on"
    try:
        product = NewProduct.parse(values)
    except ValueError as error:
        return await _form(None, values, str(error))
    if await store().product_by_slug(product.slug) is not None:
        return await _form(None, values, f"a product with slug {product.slug!r} exists already")
    await store().save_products([product])
    _refresh_catalog()
    return redirect(url_for("admin.products"), 303)


@bp.route("/products/<slug>", methods=["GET", "POST"])
async def edit_product(slug: str) -> Any:
    """Edit a product (its slug stays: it is in shoppers' links and orders)."""
    product = await store().product_by_slug(slug)
    if product is None:
        raise NotFound()
    if request.method == "GET":
        return await _form(product, _values(product), None)
    form = await request.form
    values = {
        k: str(form.get(k, ""))
        for k in ("name", "description", "price", "currency", "stock", "kind")
    }
    values["slug"] = slug
    values["active"] = form.get("active") == "on"
    try:
        changed = NewProduct.parse({**values, "image": product.image})
    except ValueError as error:
        return await _form(product, values, str(error))
    await store().save_products([changed])
    _refresh_catalog()
    return redirect(url_for("admin.products"), 303)


@bp.post("/products/<slug>/deactivate")
async def deactivate_product(slug: str) -> Any:
    """Take a product off sale (its orders keep it)."""
    product = await store().product_by_slug(slug)
    if product is None:
        raise NotFound()
    values = {**_values(product), "active": False, "image": product.image}
    await store().save_products([NewProduct.parse(values)])
    _refresh_catalog()
    return redirect(url_for("admin.products"), 303)
