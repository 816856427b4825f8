"""The shop on a real database with our fake gateway: helpers and fixtures.

``shop`` and ``db`` run every test on both backends (``backend``: a SQLite file,
a fresh database on the session's PostgreSQL); a SQLite-only test says
``@pytest.mark.parametrize("backend", ["sqlite"])``.

Loaded as a plugin by tests/conftest.py, so every layer shares these fixtures.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from quart import Quart
from quart.testing import QuartClient

from storefront import create_app
from storefront.catalog import NewProduct
from storefront.config import Settings
from storefront.store import Store, make_store
from tests.fakes import FakePayments

WEBHOOK_SECRET = "whsec_testsecret0123456789"

PRODUCTS = [
    NewProduct(slug="mug", name="Mug", unit_amount=1800, currency="eur", description="A mug"),
    NewProduct(slug="poster", name="Poster", unit_amount=3500, currency="usd"),
    NewProduct(slug="retired", name="Retired", unit_amount=900, currency="eur", active=False),
]


def make_settings(database: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    """Sandbox-mode settings on a given database file, or PostgreSQL at the URL."""
    settings = Settings.from_env(
        {
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STOREFRONT_DATABASE": str(database),
            "STOREFRONT_DATABASE_URL": database_url or "",
            "STOREFRONT_RECONCILE_INTERVAL": "0",
            # The outbox drains only in tests that run a mail server.
            "STOREFRONT_OUTBOX_INTERVAL": "0",
            # No sweeps for line items: tests set orders up by hand, and a sweep racing
            # them would ask the fake gateway about sessions it never made.
            "STOREFRONT_LINE_ITEMS_INTERVAL": "0",
            # Tests buy fast on purpose; the limit's own tests turn it on.
            "STOREFRONT_CHECKOUT_RATE_LIMIT": "0",
        }
    )
    return settings.__class__(**{**settings.__dict__, **overrides})


async def seed(database: Path, database_url: str | None = None) -> None:
    """Create the schema and the test products."""
    db = make_store(make_settings(database, database_url), create=True)
    await db.open()
    await db.save_products(PRODUCTS)
    await db.close()


def signed(payload: dict[str, Any], secret: str = WEBHOOK_SECRET, at: int | None = None):
    """A webhook body and its Stripe-Signature header, signed as Stripe does."""
    body = json.dumps(payload)
    timestamp = int(time.time()) if at is None else at
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return body, header


def event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1") -> dict[str, Any]:
    """A minimal Stripe event envelope."""
    return {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "shop.sqlite3"


@pytest.fixture
def fake_payments() -> FakePayments:
    return FakePayments(WEBHOOK_SECRET)


@pytest.fixture
async def shop(
    database: Path, database_url: str | None, fake_payments: FakePayments
) -> AsyncIterator[Quart]:
    """The shop with a fake payments gateway, served in-process, on each backend."""
    await seed(database, database_url)
    app = create_app(make_settings(database, database_url), payments=fake_payments)
    async with app.test_app():
        yield app


@pytest.fixture
def client(shop: Quart) -> QuartClient:
    return shop.test_client()


@pytest.fixture
def db(shop: Quart) -> Store:
    return shop.extensions["db"]
