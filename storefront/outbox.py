"""The outbox: emails written with the change that causes them, sent by a background task.

A status change and its emails commit in one transaction (``enqueue_email``
inside the store's write), so an email is never lost and never sent for a
change that rolled back. This task sends what is due; a failed send is retried
with backoff. A crash between the SMTP answer and marking the row sent sends
that one email again (at least once, never zero times).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiosmtplib

from storefront import mail
from storefront.mail import MailSettings, Undeliverable
from storefront.store import Store

log = logging.getLogger(__name__)

# Seconds before retry n (then the last one, every hour, until it goes).
BACKOFF = (5.0, 30.0, 120.0, 600.0, 3600.0)


def retry_delay(attempts: int) -> float:
    """How long to wait after the ``attempts``-th failed send."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


@dataclass
class DrainReport:
    """What one pass over the outbox did."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0


async def drain(db: Store, settings: MailSettings, base_url: str) -> DrainReport:
    """Send every due email once; record each outcome."""
    report = DrainReport()
    if not settings.host:
        return report
    for email in await db.due_emails():
        order = await db.order_by_id(email.order_id) if email.order_id is not None else None
        try:
            if order is None:
                raise Undeliverable("its order is gone")
            receipt = f"{base_url}/orders/{order.token}"
            items = await db.order_lines(order.id)
            message = mail.compose(email.kind, order, email.detail, settings, receipt, items)
        except Undeliverable as why:
            # Nothing to retry: a notice with no shopkeeper address set, say.
            await db.email_sent(email.id, f"not sent: {why}")
            report.dropped += 1
            continue
        try:
            await mail.send(message, settings)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            delay = retry_delay(email.attempts + 1)
            await db.email_failed(email.id, f"{type(error).__name__}: {error}", delay)
            log.warning(
                "order_id=%s: %s email not sent (%s); retry in %.0f s",
                email.order_id,
                email.kind,
                type(error).__name__,
                delay,
            )
            report.failed += 1
            continue
        await db.email_sent(email.id)
        log.info("order_id=%s: %s email sent", email.order_id, email.kind)
        report.sent += 1
    return report


async def drain_forever(db: Store, settings: MailSettings, base_url: str, interval: float) -> None:
    """Drain the outbox every ``interval`` seconds until cancelled."""
    while True:
        try:
            await drain(db, settings, base_url)
        except Exception:
            log.exception("outbox pass failed; will try again")
        await asyncio.sleep(interval)
