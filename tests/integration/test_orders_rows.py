"""Orders read back from each store: every field a row carries reaches the Order."""

from __future__ import annotations

import datetime as dt

from storefront.fulfilment import DEFAULT_SESSION_LIFETIME, apply_session, session_expires_at
from storefront.orders import Order, OrderStatus
from storefront.payments import CheckoutSession
from storefront.store import Store
from tests.fakes import FakePayments


def legacy_order(expires_at: int | None) -> Order:
    return Order(
        id=1,
        token="t",
        product_id=1,
        product_name="Mug",
        product_slug="mug",
        quantity=1,
        amount_total=1800,
        currency="eur",
        status=OrderStatus.PENDING,
        stripe_session_id="cs_test_1",
        customer_email=None,
        created_at="2026-01-31T12:00:00.000Z",
        updated_at="2026-01-31T12:00:00.000Z",
        expires_at=expires_at,
    )


def test_a_session_expires_when_stored_else_a_day_after_the_order_was_created() -> None:
    created = dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC).timestamp()
    assert DEFAULT_SESSION_LIFETIME == 86_400
    assert session_expires_at(legacy_order(None)) == created + 86_400
    assert session_expires_at(legacy_order(1_800_000_000)) == 1_800_000_000.0


async def test_an_order_reads_back_every_field(db: Store, fake_payments: FakePayments) -> None:
    order = await db.open_order(2, 3500, "usd", None, 1_900_000_000)
    assert await db.attach_session(order.id, "cs_test_rows")
    session = CheckoutSession(
        id="cs_test_rows",
        url=None,
        status="complete",
        payment_status="paid",
        client_reference_id=order.token,
        payment_intent="pi_rows",
        customer_email="rows@example.com",
        amount_total=3500,
        currency="usd",
    )
    assert await apply_session(db, order.id, session, source="test")
    back = await db.order_by_id(order.id)
    assert back is not None
    assert (back.id, back.token, back.product_id, back.product_name, back.product_slug) == (
        order.id,
        order.token,
        2,
        "Poster",
        "poster",
    )
    assert (back.quantity, back.amount_total, back.currency, back.status) == (
        1,
        3500,
        "usd",
        OrderStatus.PAID,
    )
    assert (back.stripe_session_id, back.payment_intent, back.customer_email) == (
        "cs_test_rows",
        "pi_rows",
        "rows@example.com",
    )
    assert back.expires_at == 1_900_000_000
    assert back.created_at == order.created_at
    assert back.updated_at >= order.updated_at
    assert (back.flag_reason, back.flagged_at) == (None, None)
    found = await db.order_with_timeline(order.token)
    assert found is not None
    assert found[0] == back
    assert [(e.status, e.source, e.note) for e in found[1]] == [
        (OrderStatus.PENDING, "checkout", None),
        (OrderStatus.PAID, "test", None),
    ]


async def test_a_flag_keeps_its_first_500_characters_and_its_first_reason(db: Store) -> None:
    order = await db.open_order(1, 1800, "eur", None)
    await db.flag(order.id, "x" * 499 + "yz")
    await db.flag(order.id, "a later reason")
    back = await db.order_by_id(order.id)
    assert back is not None
    assert back.flag_reason == "x" * 499 + "y"
    assert back.flagged and back.flagged_at is not None


async def test_is_known_by_token_or_payment_intent(db: Store, fake_payments: FakePayments) -> None:
    order = await db.open_order(1, 1800, "eur", None)
    assert await db.is_known(order_token=order.token)
    assert await db.is_known(order_token="unknown", payment_intent=None) is False
    assert await db.is_known() is False
    assert await db.attach_session(order.id, "cs_test_known")
    session = CheckoutSession(
        id="cs_test_known",
        url=None,
        status="complete",
        payment_status="paid",
        client_reference_id=order.token,
        payment_intent="pi_known",
        amount_total=1800,
        currency="eur",
    )
    assert await apply_session(db, order.id, session, source="test")
    assert await db.is_known(payment_intent="pi_known")
    assert await db.is_known(order_token="unknown", payment_intent="pi_known")
    assert await db.is_known(payment_intent="pi_unknown") is False
