"""Test helpers for what happens to a payment outside the shop: disputes, Dashboard refunds.

The ``/_sandbox`` helpers
below open and close disputes and refund a charge without an API call, so the events
carry ``request: {"id": null, "idempotency_key": null}`` as events no API call of the
shop caused do. Answers and errors are JSON in Stripe's shapes; no API key is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Blueprint

from .checkout import check_known
from .disputes import close_dispute, open_dispute
from .errors import invalid, no_such
from .resources.charge import Charge
from .resources.dispute import CLOSED, REASONS
from .testhelpers import helper_params, sandbox

if TYPE_CHECKING:
    from .state import SandboxState

backoffice = Blueprint("sandbox_backoffice", __name__, url_prefix="/_sandbox")

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def paid_charge(state: SandboxState, session_id: str) -> tuple[Any, Charge]:
    """A session and its charge, or a 404 / 400 naming what is missing."""
    record = state.sessions.get(session_id)
    if record is None:
        raise no_such("checkout.session", session_id)
    if record.charge is None:
        raise invalid(f"Checkout Session {session_id} has no charge: it is not paid.")
    return record, record.charge


def parse_amount(params: dict[str, str]) -> int | None:
    """An optional positive integer ``amount``."""
    if "amount" not in params:
        return None
    raw = params["amount"]
    if not raw.isdigit() or int(raw) < 1:
        raise invalid(f"Invalid positive integer: {raw}", "amount")
    return int(raw)


@backoffice.post("/sessions/<session_id>/dispute")
async def dispute_session(session_id: str) -> dict[str, Any]:
    """Open a dispute on a paid session's charge (``reason``, ``amount``: default in full)."""
    params = await helper_params()
    check_known(params, {"reason", "amount"})
    reason = params.get("reason", "fraudulent")
    if reason not in REASONS:
        raise invalid(f"Invalid reason: must be one of {', '.join(REASONS)}", "reason")
    amount = parse_amount(params)
    state = sandbox()
    _, charge = paid_charge(state, session_id)
    return open_dispute(state, charge, amount, reason).to_stripe()


@backoffice.post("/disputes/<dispute_id>/close")
async def close_dispute_helper(dispute_id: str) -> dict[str, Any]:
    """Close an open dispute: ``outcome=won`` or ``outcome=lost``."""
    params = await helper_params()
    check_known(params, {"outcome"})
    outcome = params.get("outcome", "")
    if outcome not in CLOSED:
        raise invalid("Invalid outcome: must be won or lost.", "outcome")
    state = sandbox()
    dispute = state.disputes.get(dispute_id)
    if dispute is None:
        raise no_such("dispute", dispute_id)
    close_dispute(state, dispute, outcome)
    return dispute.to_stripe()


@backoffice.post("/sessions/<session_id>/refund")
async def refund_outside(session_id: str) -> dict[str, Any]:
    """Refund part or all of a paid session's charge as the Dashboard would, no API call."""
    params = await helper_params()
    check_known(params, {"amount", "reason"})
    amount = parse_amount(params)
    reason = params.get("reason") or None
    if reason is not None and reason not in REFUND_REASONS:
        raise invalid(f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}", "reason")
    state = sandbox()
    record, _ = paid_charge(state, session_id)
    return state.refund(record, amount, {}, reason).to_stripe()
