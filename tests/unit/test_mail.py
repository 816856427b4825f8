"""Mail settings, the emails' text and the outbox's backoff: no I/O."""

from __future__ import annotations

import dataclasses

import pytest

from storefront.config import ConfigError, Settings
from storefront.mail import MailSettings, Undeliverable, compose
from storefront.orders import Order, OrderStatus
from storefront.outbox import BACKOFF, retry_delay

ORDER = Order(
    id=7,
    token="tok",
    product_id=1,
    product_name="Mug",
    product_slug="mug",
    quantity=1,
    amount_total=1800,
    currency="eur",
    status=OrderStatus.PAID,
    stripe_session_id="cs_1",
    customer_email="ada@example.com",
    created_at="",
    updated_at="",
)


def test_sandbox_mode_sends_to_the_mail_catcher_and_real_mode_asks_for_a_host() -> None:
    sandbox = Settings.from_env({}).mail
    assert (sandbox.host, sandbox.port, sandbox.tls) == ("127.0.0.1", 1025, "none")
    real = MailSettings.from_env({}, sandbox=False)
    assert (real.host, real.port, real.tls) == ("", 587, "starttls")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STOREFRONT_SMTP_PORT", "0"),
        ("STOREFRONT_SMTP_PORT", "smtp"),
        ("STOREFRONT_SMTP_TLS", "ssl3"),
        ("STOREFRONT_MAIL_FROM", "not an address"),
        ("STOREFRONT_SHOPKEEPER_EMAIL", "keeper"),
    ],
)
def test_bad_mail_settings_stop_start_up_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(name)


def test_the_password_never_shows_in_the_settings_repr() -> None:
    settings = MailSettings.from_env({"STOREFRONT_SMTP_PASSWORD": "hunter2-secret"}, True)
    assert settings.password == "hunter2-secret" and "hunter2" not in repr(settings)


def test_each_email_goes_to_its_reader_with_the_order_in_it() -> None:
    settings = MailSettings(shopkeeper="keeper@shop.example", sender="shop@shop.example")
    confirmation = compose("confirmation", ORDER, None, settings, "https://shop/orders/tok")
    assert confirmation["To"] == "ada@example.com" and "#7" in confirmation["Subject"]
    assert "https://shop/orders/tok" in confirmation.get_content()
    shipped = compose("shipped", ORDER, "Parcel 9", settings, "https://shop/orders/tok")
    assert "Tracking: Parcel 9" in shipped.get_content()
    notice = compose("dispute_notice", ORDER, "du_1 lost", settings, "")
    assert notice["To"] == "keeper@shop.example" and "du_1 lost" in notice.get_content()


def test_a_cart_orders_email_lists_every_line_under_its_order_number() -> None:
    settings = MailSettings(shopkeeper="keeper@shop.example", sender="shop@shop.example")
    order = dataclasses.replace(ORDER, order_number="K7M-4Q2P")
    items = [
        {"name": "Mug", "quantity": 2, "unit_amount": 1800},
        {"name": "Tote", "quantity": 1, "unit_amount": 2200},
    ]
    message = compose("confirmation", order, None, settings, "https://shop/o/t", items)
    assert "#K7M-4Q2P" in message["Subject"]
    text = message.get_content()
    assert "2 x Mug: €36.00" in text and "1 x Tote: €22.00" in text


def test_an_email_without_a_reader_is_undeliverable_not_retried() -> None:
    with pytest.raises(Undeliverable):
        compose("paid_notice", ORDER, None, MailSettings(), "")
    with pytest.raises(Undeliverable):
        compose(
            "confirmation",
            Order(**{**ORDER.__dict__, "customer_email": None}),
            None,
            MailSettings(),
            "",
        )


def test_backoff_grows_then_stays_hourly() -> None:
    delays = [retry_delay(n) for n in range(1, 9)]
    assert delays == sorted(delays) and delays[-1] == BACKOFF[-1] == 3600.0
