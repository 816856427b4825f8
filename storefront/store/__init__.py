"""The store: every query the shop makes, behind one interface per backend.

Rules stay outside: ``orders`` (the state machine) and ``evidence`` (Stripe's
word against the order) are plain Python the stores call. A store only reads
and writes, each write method one transaction, and every move is a conditional
update, so of several callers (tasks or processes) exactly one wins.
``sqlite.SQLiteStore`` is the embedded default; ``postgres.PostgresStore`` runs
when ``STOREFRONT_DATABASE_URL`` names a PostgreSQL database (several instances).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from storefront.orders import OrderStatus
from storefront.store.backoffice_api import BackOfficeStore

if TYPE_CHECKING:
    from typing import Any

    from storefront.carts import Cart, LineRequest
    from storefront.catalog import NewProduct, Product
    from storefront.config import Settings
    from storefront.evidence import EventOutcome, EventResult
    from storefront.orders import Move, Order, TimelineEntry


# Advisory-lock keys (``Store.exclusive``): one per job that runs on one instance at a time.
RECONCILE_LOCK = 0x5707_0001
LINE_ITEMS_LOCK = 0x5707_0002

# Statuses whose orders take Stripe's line items: paid ones, refunded ones too
# (the lines say what was paid and refunded), and processing (money on its way).
LINES_DUE_STATUSES = (
    OrderStatus.PAID.value,
    OrderStatus.PROCESSING.value,
    OrderStatus.REFUNDED.value,
)

# The columns a status poll reads first (``Store.order_glance``), in this order.
GLANCE_COLUMNS = (
    "id, status, stripe_session_id, updated_at, flagged_at, amount_refunded, fulfilment"
)


@dataclass(frozen=True)
class OrderGlance:
    """What a status poll reads first: enough to tell whether the receipt changed."""

    id: int
    status: OrderStatus
    stripe_session_id: str | None
    updated_at: str
    flagged: bool
    amount_refunded: int
    fulfilment: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OrderGlance:
        """Build from a row of ``GLANCE_COLUMNS``."""
        return cls(
            id=row["id"],
            status=OrderStatus(row["status"]),
            stripe_session_id=row["stripe_session_id"],
            updated_at=row["updated_at"],
            flagged=row["flagged_at"] is not None,
            amount_refunded=row["amount_refunded"],
            fulfilment=row["fulfilment"],
        )


@runtime_checkable
class Store(BackOfficeStore, Protocol):
    """What the shop asks of its database; one implementation per backend."""

    async def open(self) -> None:
        """Connect; refuse (SchemaError) a schema other than the migrations' head."""

    async def close(self) -> None:
        """Release every connection."""

    async def health(self) -> str | None:
        """None if the database answers and its schema is at head, else the reason."""

    def exclusive(self, key: int = ...) -> AbstractAsyncContextManager[bool]:
        """Yield whether this instance alone runs the job ``key`` (periodic reconcile)."""

    # Products.
    async def active_products(self) -> list[Product]:
        """Products on sale, in the order they were added."""

    async def product_by_slug(self, slug: str) -> Product | None:
        """The product with this slug, on sale or not."""

    async def save_products(self, products: Sequence[NewProduct]) -> int:
        """Insert or update products by slug, all in one transaction; return how many."""

    # Orders: reads see committed rows only.
    async def order_by_id(self, order_id: int) -> Order | None:
        """The order with this row id, if any."""

    async def order_with_timeline(self, token: str) -> tuple[Order, list[TimelineEntry]] | None:
        """The order with this public token and its timeline, oldest entry first."""

    async def order_glance(self, token: str) -> OrderGlance | None:
        """A few columns of the order with this token: one read by its unique index."""

    async def find_order(
        self,
        *,
        session_id: str | None = None,
        order_token: str | None = None,
        payment_intent: str | None = None,
    ) -> Order | None:
        """The order an event is about: by session id, else token, else payment intent."""

    async def is_known(
        self, *, order_token: str | None = None, payment_intent: str | None = None
    ) -> bool:
        """Whether an order carries this token or payment intent."""

    async def stale_open_orders(
        self, older_than_seconds: float, limit: int = 100, after_id: int = 0
    ) -> list[Order]:
        """Pending or processing orders untouched for longer than the threshold, by id."""

    # Orders: each method is one transaction.
    async def open_order(
        self,
        product_id: int,
        unit_amount: int,
        currency: str,
        attempt: str | None,
        expires_at: int | None = None,
    ) -> Order:
        """Insert a pending order, or return (and touch) the one this attempt made."""

    async def attach_session(self, order_id: int, session_id: str) -> bool:
        """Store the order's Checkout Session if it is pending without another; True if so."""

    async def abort_without_session(
        self, order_id: int, *, untouched_for: float, source: str
    ) -> bool:
        """Abort a pending order with no session untouched for that long; True if it moved."""

    async def flag(self, order_id: int, reason: str) -> None:
        """Flag the order for the shopkeeper; the first reason stays."""

    async def transition(
        self, order_id: int, new: OrderStatus, *, source: str, note: str | None = None
    ) -> Move | None:
        """Move the order if the state machine allows; the Move, or None."""

    async def apply_outcome(
        self, order_id: int, outcome: EventOutcome, source: str
    ) -> tuple[EventResult, str | None, bool]:
        """Check Stripe's word against the order, then move or flag it (one transaction).

        Returns the result, the flag's reason if one was raised, and whether it moved.
        """

    async def record_and_apply(
        self, event_id: str, event_type: str, outcome: EventOutcome | None
    ) -> tuple[EventResult, int | None, str | None]:
        """Record a webhook event id and apply its outcome in one transaction.

        A repeated id changes nothing (``DUPLICATE``). Returns the result, the
        order's id and the flag's reason.
        """

    # Carts and stock (revision 0003).
    async def cart(self, token: str) -> tuple[int, Cart] | None:
        """The cart with this cookie token and its id; products no longer sold are dropped."""

    async def add_to_cart(self, token: str | None, product_id: int, quantity: int) -> str:
        """Add units to the cart (made if ``token`` names none); return the cart's token.

        Raises ``QuantityError`` (nothing changed) past the per-product or per-cart limit.
        """

    async def set_cart_quantity(self, token: str, product_id: int, quantity: int) -> bool:
        """Set a line's quantity; False if the cart has no such line."""

    async def remove_from_cart(self, token: str, product_id: int) -> bool:
        """Take a product out of the cart; False if it was not there."""

    async def delete_stale_carts(self, older_than_seconds: float) -> int:
        """Delete carts untouched for longer than that, with their items; how many."""

    async def open_lines_order(
        self,
        lines: Sequence[LineRequest],
        currency: str,
        attempt: str | None,
        expires_at: int | None = None,
        cart_id: int | None = None,
    ) -> Order:
        """Insert a pending order of several lines, reserving counted stock all or nothing.

        Raises ``OutOfStock`` (nothing written) when a line asks more than is left.
        ``open_order`` reserves its one line the same way.
        """

    async def order_lines(self, order_id: int) -> list[dict[str, Any]]:
        """The order's lines: product, name, quantity, unit amount, reservation state."""

    async def stock_levels(self, product_ids: Sequence[int]) -> dict[int, int | None]:
        """Units left of each product (None: unlimited; 0: not on sale), in one small read."""

    async def offer_shipping(self, order_id: int, amounts: Sequence[int]) -> None:
        """Record the shipping amounts the order's session offers (checked when it is paid)."""

    async def record_lines(self, order_id: int, paid: EventOutcome) -> str | None:
        """Store a paid order's line amounts learnt after its move; the flag reason or None.

        Only for a paid, processing or refunded order; lines that do not fit flag
        it instead. Idempotent: the same lines store the same amounts again.
        """

    async def line_items_due(
        self, limit: int = 100, *, after_id: int = 0, order_ids: Sequence[int] | None = None
    ) -> list[Order]:
        """Orders whose line items are due from Stripe, oldest (lowest id) first.

        Due: paid, processing or refunded with Stripe's totals recorded, a
        session, no flag, made at or after revision 0005 (``shipping_offered``
        not NULL), and a line without ``amount_total``. Paged by ``after_id``;
        ``order_ids`` narrows it to those orders.
        """

    async def stock_report(self) -> dict[str, tuple[int | None, int, int]]:
        """Per product slug: stock, reserved, and the units active reservations hold."""


def make_store(settings: Settings, *, create: bool = False) -> Store:
    """The store the settings name: PostgreSQL at the URL, else the SQLite file.

    ``create`` migrates (and for SQLite creates) the database on open: tools and
    tests only, never the running shop.
    """
    if settings.database_url:
        from storefront.store.postgres import PostgresStore

        return PostgresStore(settings.database_url, create=create)
    from storefront.store.sqlite import SQLiteStore

    return SQLiteStore(
        settings.database, busy_timeout_ms=settings.db_busy_timeout_ms, create=create
    )


def where(settings: Settings) -> str:
    """The database as messages name it (a URL without its password)."""
    if settings.database_url:
        from storefront.config import redacted

        return redacted(settings.database_url)
    return str(settings.database)


async def migrate(settings: Settings) -> str:
    """Bring the settings' existing database to the head; return the revision it was at."""
    if settings.database_url:
        from storefront.store import postgres

        return await asyncio.to_thread(postgres.migrate, settings.database_url)
    from storefront import db

    # Migrating never creates a SQLite file: a wrong path must not yield an empty shop.
    db.require_database(settings.database)
    return await asyncio.to_thread(db.migrate, settings.database)


async def require_schema(settings: Settings) -> None:
    """Raise SchemaError (or DatabaseMissing) unless the database is at the head revision."""
    if settings.database_url:
        from storefront.store import postgres

        await postgres.require_schema(settings.database_url)
        return
    from storefront import db

    db.require_database(settings.database)
    db.require_schema(settings.database)
