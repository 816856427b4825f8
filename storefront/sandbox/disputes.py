"""Disputes: opened on a charge (by a helper or a test card), then won or lost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import invalid
from .resources.charge import Charge, MethodDetails
from .resources.dispute import CLOSED, Dispute

if TYPE_CHECKING:
    from .state import SandboxState

# Stripe's test cards that pay, then get disputed. Test mode knows only its documented
# numbers, so the last four digits name the card.
DISPUTE_CARDS = {"0259": "fraudulent", "2685": "product_not_received"}


def auto_dispute_reason(details: MethodDetails) -> str | None:
    """The reason a dispute opens right after a payment with this card, if it is one."""
    return DISPUTE_CARDS.get(details.last4) if details.type == "card" else None


def open_dispute(state: SandboxState, charge: Charge, amount: int | None, reason: str) -> Dispute:
    """Open a dispute on ``charge``; emit ``charge.dispute.created`` and ``funds_withdrawn``."""
    if charge.disputed:
        raise invalid(f"Charge {charge.id} has already been disputed.", code="charge_disputed")
    left = charge.amount - charge.amount_refunded
    amount = left if amount is None else amount
    if not 0 < amount <= left:
        raise invalid(
            f"Dispute amount ({amount}) must be between 1 and the unrefunded amount ({left}).",
            "amount",
        )
    dispute = Dispute(charge=charge, amount=amount, reason=reason, created=state.now())
    charge.disputed = True
    state.disputes[dispute.id] = dispute
    state.emit("charge.dispute.created", dispute.to_stripe())
    dispute.withdraw(state.now())
    state.emit("charge.dispute.funds_withdrawn", dispute.to_stripe())
    return dispute


def close_dispute(state: SandboxState, dispute: Dispute, outcome: str) -> None:
    """Decide an open dispute; emit ``charge.dispute.closed`` (and ``funds_reinstated``)."""
    if dispute.status in CLOSED:
        raise invalid(f"Dispute {dispute.id} is already closed ({dispute.status}).")
    previous = {"status": dispute.status}
    reinstated = dispute.close(outcome, state.now())
    state.emit("charge.dispute.closed", dispute.to_stripe(), previous_attributes=previous)
    if reinstated is not None:
        state.emit("charge.dispute.funds_reinstated", dispute.to_stripe())
