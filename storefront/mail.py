"""Outgoing email: its settings, the messages the shop writes, and sending over SMTP."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib

from storefront.money import format_money
from storefront.orders import Order

# The sandbox's mail catcher listens here by default (SandboxSettings.smtp_port).
SANDBOX_SMTP = ("127.0.0.1", 1025)
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
TLS_MODES = ("none", "starttls", "tls")


@dataclass(frozen=True)
class MailSettings:
    """Where and how the shop sends email; ``host`` empty: email stays in the outbox."""

    host: str = ""
    port: int = 587
    tls: str = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = "shop@localhost"
    shopkeeper: str = ""
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str], sandbox: bool) -> MailSettings:
        """Read the SMTP settings; in sandbox mode default to the local mail catcher."""
        from storefront.config import ConfigError  # config builds these settings

        host = environ.get("STOREFRONT_SMTP_HOST", "").strip()
        if sandbox and not host:
            host = SANDBOX_SMTP[0]
        default_port = SANDBOX_SMTP[1] if sandbox else 587
        raw_port = environ.get("STOREFRONT_SMTP_PORT", "").strip() or str(default_port)
        if not raw_port.isdigit() or not 1 <= int(raw_port) <= 65535:
            raise ConfigError(f"STOREFRONT_SMTP_PORT must be a port number, got {raw_port!r}")
        tls = environ.get("STOREFRONT_SMTP_TLS", "").strip().lower() or (
            "none" if sandbox else "starttls"
        )
        if tls not in TLS_MODES:
            raise ConfigError(f"STOREFRONT_SMTP_TLS must be one of {', '.join(TLS_MODES)}")
        sender = environ.get("STOREFRONT_MAIL_FROM", "").strip() or "shop@localhost"
        shopkeeper = environ.get("STOREFRONT_SHOPKEEPER_EMAIL", "").strip()
        for name, value in (
            ("STOREFRONT_MAIL_FROM", sender),
            ("STOREFRONT_SHOPKEEPER_EMAIL", shopkeeper),
        ):
            if value and not _ADDRESS.match(value):
                raise ConfigError(f"{name} must be an email address")
        return cls(
            host=host,
            port=int(raw_port),
            tls=tls,
            username=environ.get("STOREFRONT_SMTP_USERNAME", "").strip(),
            password=environ.get("STOREFRONT_SMTP_PASSWORD", ""),
            sender=sender,
            shopkeeper=shopkeeper,
        )


class Undeliverable(Exception):
    """The email has no one to go to (no shopper address, no shopkeeper set)."""


def compose(
    kind: str,
    order: Order,
    detail: str | None,
    settings: MailSettings,
    receipt_url: str,
    items: Sequence[Mapping[str, Any]] = (),
) -> EmailMessage:
    """The message for an outbox entry; Undeliverable if it has no recipient.

    ``items`` are the order's lines (name, quantity, unit_amount); without them
    the order's own product and quantity stand for its one line.
    """
    total = format_money(order.charged, order.currency)
    label = f"#{order.order_number}" if order.order_number else f"#{order.id}"
    if items:
        bought = [
            f"{item['quantity']} x {item['name']}: "
            f"{format_money(item['unit_amount'] * item['quantity'], order.currency)}"
            for item in items
        ]
    else:
        bought = [f"{order.quantity} x {order.product_name}"]
    lines = [f"Order {label}", *bought, f"Total: {total}"]
    shopper = order.customer_email
    if kind == "confirmation":
        to, subject = shopper, f"Your order {label} is confirmed"
        body = ["Thank you for your order.", "", *lines, "", f"Your receipt: {receipt_url}"]
    elif kind == "shipped":
        to, subject = shopper, f"Your order {label} is on its way"
        body = ["Your order has been shipped.", "", *lines]
        if detail:
            body += ["", f"Tracking: {detail}"]
        body += ["", f"Your receipt: {receipt_url}"]
    elif kind == "paid_notice":
        to, subject = settings.shopkeeper, f"New order {label}: {total}"
        body = ["A new order was paid.", "", *lines, f"Customer: {shopper or 'unknown'}"]
    elif kind == "dispute_notice":
        to, subject = settings.shopkeeper, f"Dispute on order {label}"
        body = [f"A dispute on order {label}: {detail or ''}", "", *lines]
    else:
        raise Undeliverable(f"unknown email kind {kind!r}")
    if not to:
        raise Undeliverable(f"no recipient for {kind}")
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    # A stable id per cause: a resend after a crash is recognisably the same email.
    message["Message-ID"] = make_msgid(f"{kind}.{order.id}")
    message.set_content("\n".join(body) + "\n")
    return message


async def send(message: EmailMessage, settings: MailSettings) -> None:
    """Send one message over SMTP; raises aiosmtplib.SMTPException or OSError."""
    await aiosmtplib.send(
        message,
        hostname=settings.host,
        port=settings.port,
        username=settings.username or None,
        password=settings.password or None,
        use_tls=settings.tls == "tls",
        start_tls=settings.tls == "starttls",
        timeout=settings.timeout,
    )
