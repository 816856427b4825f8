"""Products: what they are, the shopkeeper's import, and the catalog page."""

from __future__ import annotations

import csv
import re
import secrets
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quart import Blueprint, current_app, render_template

from storefront.money import normalise_currency, parse_price

if TYPE_CHECKING:
    from storefront.store import Store

bp = Blueprint("catalog", __name__)

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True)
class Product:
    """Something the shop sells, priced in minor units."""

    id: int
    slug: str
    name: str
    description: str
    unit_amount: int
    currency: str
    image: str | None
    active: bool
    # Units on hand (None: unlimited) and units held by open checkouts.
    stock: int | None = None
    reserved: int = 0
    physical: bool = False

    @property
    def available(self) -> int | None:
        """Units that can still be sold (None: unlimited)."""
        return None if self.stock is None else max(self.stock - self.reserved, 0)

    @property
    def sold_out(self) -> bool:
        """Whether nothing is left to sell."""
        return self.available == 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Product:
        keys = row.keys()  # type: ignore[attr-defined]
        return cls(
            stock=row["stock"] if "stock" in keys else None,
            reserved=row["reserved"] if "reserved" in keys else 0,
            physical=("kind" in keys and row["kind"] == "physical"),
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            description=row["description"],
            unit_amount=row["unit_amount"],
            currency=row["currency"],
            image=row["image"],
            active=bool(row["active"]),
        )


@dataclass(frozen=True)
class NewProduct:
    """A product as a shopkeeper describes it, validated."""

    slug: str
    name: str
    unit_amount: int
    currency: str
    description: str = ""
    image: str | None = None
    active: bool = True
    stock: int | None = None
    physical: bool = False

    @classmethod
    def parse(cls, fields: Mapping[str, Any]) -> NewProduct:
        """Validate a product description; raise ValueError naming the bad field."""
        slug = str(fields.get("slug", "")).strip()
        if not SLUG.match(slug):
            raise ValueError(f"slug {slug!r} must be 1-64 lowercase letters, digits or dashes")
        name = str(fields.get("name", "")).strip()
        if not name or len(name) > 200:
            raise ValueError(f"product {slug}: name must be 1-200 characters")
        # PostgreSQL cannot store a NUL character: refuse it on both backends alike.
        if "\x00" in name or "\x00" in str(fields.get("description") or ""):
            raise ValueError(f"product {slug}: name and description must not hold a NUL character")
        currency = normalise_currency(str(fields.get("currency", "")))
        price = fields.get("price")
        if price is None:
            raise ValueError(f'product {slug}: price is required, e.g. price = "19.99"')
        unit_amount = parse_price(str(price), currency)
        active = fields.get("active", True)
        if not isinstance(active, bool):
            raise ValueError(f"product {slug}: active must be true or false")
        image = fields.get("image")
        if image and not (
            str(image).startswith("https://") or re.match(r"^[A-Za-z0-9_./-]{1,200}$", str(image))
        ):
            raise ValueError(f"product {slug}: image must be an https URL or a static file name")
        stock = fields.get("stock")
        if isinstance(stock, str) and stock.strip():
            stock = int(stock) if stock.strip().isdigit() else stock
        elif isinstance(stock, str):
            stock = None
        if stock is not None and (
            not isinstance(stock, int) or isinstance(stock, bool) or not 0 <= stock <= 10**9
        ):
            raise ValueError(f"product {slug}: stock must be a whole number from 0, or left out")
        kind = str(fields.get("kind") or "digital").strip().lower()
        if kind not in ("physical", "digital"):
            raise ValueError(f"product {slug}: kind must be physical or digital")
        return cls(
            stock=stock,
            physical=kind == "physical",
            slug=slug,
            name=name,
            unit_amount=unit_amount,
            currency=currency,
            description=str(fields.get("description", "")).strip(),
            image=str(image) if image else None,
            active=active,
        )


def read_products_file(path: Path) -> list[NewProduct]:
    """Read ``[[product]]`` tables from TOML, or rows from a .csv; raise ValueError."""
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    entries = data.get("product")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected one or more [[product]] tables")
    products = [NewProduct.parse(entry) for entry in entries]
    slugs = [p.slug for p in products]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"{path}: a slug appears twice")
    return products


def _read_csv(path: Path) -> list[NewProduct]:
    # Columns as the TOML keys: slug,name,price,currency[,description,image,active,stock,kind].
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path}: not a readable CSV file: {error}") from None
    if not rows:
        raise ValueError(f"{path}: expected a header line and one or more products")
    products = []
    for number, row in enumerate(rows, start=2):
        fields: dict[str, Any] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        active = fields.get("active", "true").lower() or "true"
        if active not in ("true", "false"):
            raise ValueError(f"{path}:{number}: active must be true or false")
        fields["active"] = active == "true"
        try:
            products.append(NewProduct.parse(fields))
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
    slugs = [p.slug for p in products]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"{path}: a slug appears twice")
    return products


class CatalogPage:
    """The catalog page, rendered at most once per ``max_age`` seconds.

    Every shopper sees the same cards; only the Buy forms' attempt nonces
    differ. So the page is rendered with a marker where each nonce goes and
    every request splices fresh nonces in: a list join instead of a query and
    a template render. Products changed from the command line show up within
    ``max_age``; checkout always reads the database, so a stale card can never
    sell at a stale price.
    """

    MARKER = "\x00attempt\x00"
    BADGE = "\x00badge\x00"

    def __init__(self, max_age: float = 1.0):
        self.max_age = max_age
        self._parts: list[str] = []
        self._rendered_at = float("-inf")

    def invalidate(self) -> None:
        """Render afresh on the next request (the back office changed a product)."""
        self._rendered_at = float("-inf")

    async def render(self, db: Store, cart_count: int = 0) -> str:
        """The page with a fresh nonce in every Buy form and this shopper's cart count."""
        now = time.monotonic()
        if now - self._rendered_at > self.max_age:
            products = await db.active_products()
            current_app.extensions["image_origins"].update([p.image for p in products])
            html = await render_template(
                "catalog.html",
                products=products,
                attempts=_Marked(self.MARKER),
                cart_count=self.BADGE,
            )
            self._parts, self._rendered_at = html.split(self.MARKER), now
        return self._splice(cart_count)

    def cached(self, cart_count: int) -> str | None:
        """The page from the last render if that is fresh enough, else None (render first)."""
        if time.monotonic() - self._rendered_at > self.max_age:
            return None
        return self._splice(cart_count)

    def _splice(self, cart_count: int) -> str:
        pieces = [self._parts[0]]
        for part in self._parts[1:]:
            pieces += (secrets.token_urlsafe(16), part)
        return "".join(pieces).replace(self.BADGE, str(cart_count))


class _Marked(dict[str, str]):
    """A mapping that answers the same marker for every product."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker

    def __missing__(self, key: str) -> str:
        return self.marker


@bp.get("/")
async def index() -> str:
    """The catalog: one card per product on sale."""
    # Each Buy form carries a fresh attempt nonce: a double click of the same
    # form leads to the same order and the same Checkout Session.
    from storefront.cart import cart_count

    db = current_app.extensions["db"]
    return await current_app.extensions["catalog_page"].render(db, await cart_count(db))
