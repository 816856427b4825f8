"""The back office's part of the store interface (``Store`` includes it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from storefront.catalog import Product
    from storefront.evidence import DisputeReport, EventResult
    from storefront.orders import Fulfilment, Order, TimelineEntry
    from storefront.store.backoffice import (
        Dispute,
        OrderQuery,
        OutboxEmail,
        StaffSession,
        WebhookLogEntry,
    )


class BackOfficeStore(Protocol):
    """Queries of the back office, the outbox and the staff sessions."""

    async def all_products(self) -> list[Product]:
        """Every product, on sale or not, in the order they were added."""

    async def list_orders(self, query: OrderQuery) -> tuple[list[Order], int]:
        """One page of orders, newest first, and how many match in all."""

    async def order_history(
        self, order_id: int
    ) -> tuple[list[TimelineEntry], list[WebhookLogEntry], list[Dispute]]:
        """The order's timeline, the webhook events that touched it and its disputes."""

    async def webhook_log(
        self, limit: int = 100, before: str | None = None
    ) -> list[WebhookLogEntry]:
        """The newest webhook events received."""

    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these event ids were received already."""

    async def set_fulfilment(
        self, order_id: int, fulfilment: Fulfilment, note: str | None
    ) -> bool:
        """Mark a paid, unfulfilled order shipped or delivered (queues the shipped email)."""

    async def record_dispute(
        self, event_id: str, event_type: str, dispute: DisputeReport
    ) -> tuple[EventResult, int | None]:
        """Record a dispute event, store the dispute, flag its order, queue the notice."""

    async def add_staff(self, email: str, password_hash: str) -> None:
        """Create a staff account or set its new password (ending its sessions)."""

    async def staff_by_email(self, email: str) -> tuple[int, str] | None:
        """The account's id and password hash."""

    async def open_staff_session(
        self, key: str, user_id: int, csrf_token: str, lifetime: int
    ) -> None:
        """Store a new session under ``key``."""

    async def staff_session(self, key: str) -> StaffSession | None:
        """The live session stored under ``key``."""

    async def close_staff_session(self, key: str) -> None:
        """End the session stored under ``key``."""

    async def due_emails(self, limit: int = 20) -> list[OutboxEmail]:
        """Unsent emails whose next attempt is due."""

    async def email_sent(self, email_id: int, note: str | None = None) -> None:
        """Mark an outbox email sent."""

    async def email_failed(self, email_id: int, error: str, retry_in: float) -> None:
        """Count a failed attempt and schedule the next."""
