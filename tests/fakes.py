"""A hand-written fake of our own PaymentGateway, for tests of the views."""

from __future__ import annotations

import itertools
from dataclasses import replace

from storefront.paid_lines import LineAmounts
from storefront.payments import (
    CheckoutLine,
    CheckoutRequest,
    CheckoutSession,
    PaymentError,
    Refund,
    StripePayments,
    UndeliveredEvent,
    WebhookEvent,
)


class FakePayments:
    """Keeps sessions in a dict; can be told to fail like Stripe does."""

    def __init__(self, webhook_secret: str):
        self.sessions: dict[str, CheckoutSession] = {}
        self.requests: list[CheckoutRequest] = []
        self.by_key: dict[str, str] = {}
        # Every session id asked about (retrieve or expire), to count Stripe calls.
        self.asked: list[str] = []
        self.fail = False
        self.refunds: list[tuple[str, int, str]] = []
        self.undelivered: list[UndeliveredEvent] = []
        # The request each session was made from, and every line-items call.
        self.made_from: dict[str, CheckoutRequest] = {}
        self.line_item_calls: list[str] = []
        self._ids = itertools.count(1)
        # Signature checks are pure computation: use the real ones.
        self._verifier = StripePayments("sk_test_fake000000", webhook_secret)

    @property
    def longest_call(self) -> float:
        # In-process and instant: no checkout call is ever in flight for long.
        return 0.0

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        self.requests.append(request)
        if self.fail:
            raise PaymentError("APIError (HTTP 500): fake outage")
        if request.idempotency_key in self.by_key:
            return self.sessions[self.by_key[request.idempotency_key]]
        session_id = f"cs_test_fake{next(self._ids)}"
        session = CheckoutSession(
            id=session_id,
            url=f"https://pay.example/{session_id}",
            status="open",
            payment_status="unpaid",
            client_reference_id=request.order_token,
            amount_total=request.unit_amount * request.quantity,
            currency=request.currency,
            expires_at=request.expires_at,
        )
        self.sessions[session_id] = session
        self.made_from[session_id] = request
        self.by_key[request.idempotency_key] = session_id
        return session

    def complete(self, session_id: str, payment_status: str = "paid") -> None:
        """Make a session complete, as if the shopper paid."""
        self.sessions[session_id] = replace(
            self.sessions[session_id],
            status="complete",
            payment_status=payment_status,
            url=None,
            payment_intent=f"pi_{session_id}",
            customer_email="shopper@example.com",
        )

    async def retrieve_session(self, session_id: str) -> CheckoutSession:
        self.asked.append(session_id)
        if self.fail:
            raise PaymentError("APIError (HTTP 500): fake outage")
        if session_id not in self.sessions:
            raise PaymentError(
                "InvalidRequestError (HTTP 404): no such session",
                http_status=404,
                code="resource_missing",
            )
        return self.sessions[session_id]

    async def line_items(self, session_id: str) -> tuple[LineAmounts, ...]:
        """Each line at its price: the fake's sessions take nothing off and add no tax."""
        self.line_item_calls.append(session_id)
        if self.fail:
            raise PaymentError("APIError (HTTP 500): fake outage")
        request = self.made_from.get(session_id)
        if request is None:
            raise PaymentError(
                "InvalidRequestError (HTTP 404): no such session",
                http_status=404,
                code="resource_missing",
            )
        ordered = request.lines or (
            CheckoutLine(
                request.product_name,
                request.product_description,
                request.unit_amount,
                request.quantity,
            ),
        )
        return tuple(
            LineAmounts(x.quantity, x.unit_amount * x.quantity, 0, 0, x.unit_amount * x.quantity)
            for x in ordered
        )

    async def expire_session(self, session_id: str) -> CheckoutSession:
        session = await self.retrieve_session(session_id)
        if session.status != "open":
            raise PaymentError("InvalidRequestError (HTTP 400): session is not open")
        self.sessions[session_id] = replace(session, status="expired", url=None)
        return self.sessions[session_id]

    async def find_session_by_payment_intent(self, payment_intent: str) -> CheckoutSession | None:
        if self.fail:
            raise PaymentError("APIError (HTTP 500): fake outage")
        matches = [s for s in self.sessions.values() if s.payment_intent == payment_intent]
        return matches[0] if matches else None

    def verify_webhook(self, payload: bytes, header: str | None) -> WebhookEvent:
        return self._verifier.verify_webhook(payload, header)

    async def create_refund(
        self, payment_intent: str, amount: int, idempotency_key: str
    ) -> Refund:
        if self.fail:
            raise PaymentError("APIError (HTTP 500): fake outage")
        self.refunds.append((payment_intent, amount, idempotency_key))
        return Refund(id=f"re_fake_{len(self.refunds)}", amount=amount, status="succeeded")

    async def undelivered_events(self, since: int, limit: int = 100) -> list[UndeliveredEvent]:
        if self.fail:
            raise PaymentError("APIError (HTTP 500): fake outage")
        return list(self.undelivered)

    async def retrieve_event(self, event_id: str) -> WebhookEvent:
        for item in self.undelivered:
            if item.event.id == event_id:
                return item.event
        raise PaymentError("no such event", http_status=404, code="resource_missing")
