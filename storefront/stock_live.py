"""Sold out, live: a page already open learns when a product it shows sells out.

A page carries the stock it shows in a hidden element that htmx polls every
``STOREFRONT_STOCK_POLL_INTERVAL`` seconds: ``GET /stock/<view>?v=…``, where
``v`` lists, per counted product, its id, the level shown and the cap past
which the page shows no difference (``12.0.6``: product 12 shown sold out,
watched up to 6). The endpoint reads exactly those products' stock (one small
query) and answers 204 when every level is as shown, which htmx leaves alone.
Otherwise it answers the poller again with the new levels and, out of band,
the buy areas of the changed cards (the catalog) or the stock notes of the
changed lines and the checkout button (the cart). No JavaScript of our own.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import Blueprint, Response, current_app, render_template, request

from storefront.carts import Cart
from storefront.errors import ShopError, SoldOut

if TYPE_CHECKING:
    from storefront.catalog import Product
    from storefront.store import Store

bp = Blueprint("stock_live", __name__)

# Cards say "Only N left" from here down: above it, changes show nothing.
LOW_STOCK = 5
# More products than this on one page are not watched (the URL stays short).
MAX_WATCHED = 200
_ENTRY = re.compile(r"^([0-9]{1,12})\.([0-9]{1,3})\.([0-9]{1,3})$")


class BadStockVersion(ShopError):
    status_code = 400
    title = "Bad request"
    message = "That stock version is not one this shop writes."


@dataclass(frozen=True)
class Level:
    """A product's stock as a page shows it: units left, capped where display stops changing."""

    product_id: int
    level: int
    cap: int

    def now(self, left: int | None) -> Level:
        """This product's level for ``left`` units (None: unlimited)."""
        return Level(self.product_id, cap_level(left, self.cap), self.cap)


def cap_level(left: int | None, cap: int) -> int:
    """Units left as a page shows them: anything from ``cap`` up looks the same."""
    return cap if left is None else min(left, cap)


def encode(levels: Iterable[Level]) -> str:
    """The ``v`` parameter for these levels."""
    return "-".join(f"{x.product_id}.{x.level}.{x.cap}" for x in levels)


def parse(raw: str | None) -> tuple[Level, ...]:
    """Levels from a ``v`` parameter; BadStockVersion for anything we never wrote."""
    if not raw:
        return ()
    entries = raw.split("-")
    if len(entries) > MAX_WATCHED:
        raise BadStockVersion()
    levels = []
    for entry in entries:
        match = _ENTRY.match(entry)
        if match is None:
            raise BadStockVersion()
        product_id, level, cap = (int(part) for part in match.groups())
        if level > cap:
            raise BadStockVersion()
        levels.append(Level(product_id, level, cap))
    if len({x.product_id for x in levels}) != len(levels):
        raise BadStockVersion()
    return tuple(levels)


def catalog_levels(products: Iterable[Product]) -> tuple[Level, ...]:
    """What the catalog's cards show of each counted product."""
    cap = LOW_STOCK + 1
    return tuple(
        Level(p.id, cap_level(p.available, cap), cap) for p in products if p.stock is not None
    )[:MAX_WATCHED]


def cart_levels(cart: Cart) -> tuple[Level, ...]:
    """What the cart's lines show: short or not, and how many are left when short."""
    return tuple(
        Level(x.product_id, cap_level(x.available, x.quantity), x.quantity)
        for x in cart.lines
        if x.available is not None
    )


def changed(shown: Iterable[Level], left: Mapping[int, int | None]) -> list[Level]:
    """The levels now of the products whose level differs from the one shown."""
    # A product gone from the table can no longer be bought: it counts as none left.
    now = [x.now(left.get(x.product_id, 0)) for x in shown]
    return [x for x, before in zip(now, shown, strict=True) if x != before]


async def _answer(db: Store, shown: tuple[Level, ...]) -> tuple[list[Level], dict[int, Level]]:
    left = await db.stock_levels([x.product_id for x in shown])
    moved = changed(shown, left)
    return moved, {x.product_id: x for x in moved}


def _unchanged() -> Response:
    return Response("", status=204, headers={"Cache-Control": "no-store"})


def _html(body: str, status: int = 200) -> Response:
    return Response(
        body,
        status=status,
        content_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )


@bp.get("/stock/catalog")
async def catalog() -> Response:
    """204 while the cards are right; else the poller and the changed cards' buy areas."""
    shown = parse(request.args.get("v"))
    db = current_app.extensions["db"]
    moved, by_id = await _answer(db, shown)
    if not moved:
        return _unchanged()
    levels = [by_id.get(x.product_id, x) for x in shown]
    body = await render_template("partials/stock_poll.html", view="catalog", levels=levels)
    products = [p for p in await db.active_products() if p.id in by_id]
    body += await buy_areas(products)
    return _html(body)


@bp.get("/stock/cart")
async def cart() -> Response:
    """204 while the cart's lines are right; else the poller, their notes and the button."""
    from storefront.cart import current_cart

    shown = parse(request.args.get("v"))
    db = current_app.extensions["db"]
    moved, by_id = await _answer(db, shown)
    if not moved:
        return _unchanged()
    _, now = await current_cart(db)
    return _html(await cart_stock(now, by_id, poller_oob=False))


async def buy_areas(products: Iterable[Product]) -> str:
    """The cards' buy areas as out-of-band swaps, each Buy form with a fresh nonce."""
    parts = []
    for product in products:
        parts.append(
            await render_template(
                "partials/buy_area.html",
                product=product,
                attempts={product.slug: secrets.token_urlsafe(16)},
                oob=True,
            )
        )
    return "".join(parts)


async def cart_stock(cart: Cart, product_ids: Iterable[int], *, poller_oob: bool = True) -> str:
    """The cart's poller, the named lines' stock notes and the checkout form (out of band)."""
    wanted = set(product_ids)
    body = await render_template(
        "partials/stock_poll.html", view="cart", levels=cart_levels(cart), oob=poller_oob
    )
    for line in cart.lines:
        if line.product_id in wanted:
            body += await render_template("partials/line_stock.html", line=line, oob=True)
    body += await render_template(
        "partials/checkout_form.html", cart=cart, attempt=secrets.token_urlsafe(16), oob=True
    )
    return body


async def sold_out_answer(error: SoldOut, oob: str) -> Response:
    """The error message plus the out-of-band swaps that show what ran out."""
    body = await render_template(
        "partials/error.html", status=error.status_code, title=error.title, message=error.message
    )
    return _html(body + oob, status=error.status_code)


async def card_sold_out(db: Store, slug: str, error: SoldOut) -> Response:
    """A refused Buy or Add: the card's message, and its buy area as the stock is now."""
    product = await db.product_by_slug(slug)
    return await sold_out_answer(error, await buy_areas([product] if product else []))


async def cart_sold_out(db: Store, error: SoldOut) -> Response:
    """A refused cart checkout: the message, and every line's stock note as it is now."""
    from storefront.cart import current_cart

    _, now = await current_cart(db)
    return await sold_out_answer(error, await cart_stock(now, [x.product_id for x in now.lines]))


@bp.app_template_global()
def stock_poll_every() -> int:
    """Seconds between an open page's stock checks (0: no polling)."""
    return int(current_app.config["SETTINGS"].stock_poll_interval)


@bp.app_template_global()
def stock_version(levels: Iterable[Level]) -> str:
    """The ``v`` a poller sends for these levels."""
    return encode(levels)


@bp.app_template_global("catalog_levels")
def _catalog_levels(products: Iterable[Product]) -> tuple[Level, ...]:
    return catalog_levels(products)


@bp.app_template_global("cart_levels")
def _cart_levels(cart: Cart) -> tuple[Level, ...]:
    return cart_levels(cart)
