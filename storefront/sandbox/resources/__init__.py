"""Stripe's objects as the sandbox holds them: one typed module per resource.

Each type keeps the sandbox's state for one object, changes it only through its own methods,
and renders the complete JSON of the pinned API version with ``to_stripe()``.
"""

from __future__ import annotations

from .charge import Charge, MethodDetails
from .discount import AppliedDiscount
from .dispute import Dispute
from .event import event_object
from .line_item import LineItem
from .payment_intent import PaymentIntent
from .refund import Refund
from .session import CheckoutSession, PendingAuth

__all__ = [
    "AppliedDiscount",
    "Charge",
    "CheckoutSession",
    "Dispute",
    "LineItem",
    "MethodDetails",
    "PaymentIntent",
    "PendingAuth",
    "Refund",
    "event_object",
]
