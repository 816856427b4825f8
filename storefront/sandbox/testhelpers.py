"""Test helpers that need no browser: pay a session by API, and a test clock.

They live under ``/_sandbox`` beside the sandbox's other tools, not under ``/v1``:
Stripe has no API that pays a Checkout Session, and its test clocks move only the
objects attached to them, while this clock moves the whole sandbox. Answers and
errors are JSON in Stripe's shapes; no API key is needed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Blueprint, current_app, request

from .checkout import check_known
from .errors import invalid, no_such
from .helper_inputs import INPUT_PARAMS, enter_inputs
from .hosted import iban_details
from .resources.session import DELAYED_METHODS
from .state import SandboxState

helpers = Blueprint("sandbox_helpers", __name__, url_prefix="/_sandbox")

COMPLETE_PARAMS = {"payment_method", "outcome", "email", "name"} | INPUT_PARAMS
OUTCOMES = ("succeeded", "failed")
# Stripe's test IBANs whose debits settle with each outcome.
TEST_IBANS = {"succeeded": "DE89370400440532013000", "failed": "DE62370400440532013001"}


def sandbox() -> SandboxState:
    """The state of the app serving this request."""
    return current_app.extensions["sandbox"]


async def helper_params() -> dict[str, str]:
    """Parameters from the query string and a form body alike."""
    form = await request.form
    return {**request.args.to_dict(), **form.to_dict()}


def clock_object(state: SandboxState) -> dict[str, Any]:
    """The clock as JSON: sandbox time, and how far it runs ahead of real time."""
    return {
        "object": "sandbox.clock",
        "now": state.now(),
        "offset": int(state.clock.offset),
    }


@helpers.get("/clock")
async def read_clock() -> dict[str, Any]:
    """Sandbox time now."""
    return clock_object(sandbox())


@helpers.post("/clock/advance")
async def advance_clock() -> dict[str, Any]:
    """Move sandbox time on by ``seconds`` (or to ``to``); expire and settle what falls due."""
    params = await helper_params()
    check_known(params, {"seconds", "to"})
    state = sandbox()
    if ("seconds" in params) == ("to" in params):
        raise invalid("Send exactly one of seconds (to move by) or to (a Unix time).", "seconds")
    name = "seconds" if "seconds" in params else "to"
    raw = params[name]
    if not raw.isdigit():
        raise invalid(f"Invalid non-negative integer: {raw}", name)
    seconds = int(raw) if name == "seconds" else int(raw) - state.now()
    if seconds < 0:
        raise invalid(
            f"The clock only moves forward: {raw} is before the sandbox's time {state.now()}.",
            "to",
        )
    state.clock.advance(seconds)
    # Expired before waiting on the debits: meanwhile the background sweep would take
    # them, and this answer would miss them.
    expired = state.expire_due()
    # Bank debits now due settle before this answers, so a test can look right after.
    due = state.clock.due_sleepers()
    if due:
        await asyncio.wait(due)
    return clock_object(state) | {"expired_sessions": expired, "settled_payments": len(due)}


@helpers.post("/sessions/<session_id>/complete")
async def complete_session(session_id: str) -> dict[str, Any]:
    """Pay an open session as a shopper would on the hosted page, without a browser.

    ``payment_method=card`` (default) completes it paid. ``payment_method=sepa_debit``
    completes it unpaid (processing); it then settles after ``async_payment_delay`` of
    sandbox time with ``outcome`` (``succeeded``, default, or ``failed``).
    """
    params = await helper_params()
    check_known(params, COMPLETE_PARAMS)
    state = sandbox()
    record = state.sessions.get(session_id)
    if record is None:
        raise no_such("checkout.session", session_id)
    method = params.get("payment_method", "card")
    if method not in record.payment_method_types:
        raise invalid(
            f"This Checkout Session does not accept {method}: it offers "
            + ", ".join(record.payment_method_types)
            + ".",
            "payment_method",
        )
    outcome = params.get("outcome", "succeeded")
    if outcome not in OUTCOMES or (outcome == "failed" and method not in DELAYED_METHODS):
        raise invalid(
            "Invalid outcome: must be succeeded, or failed for a delayed method (sepa_debit).",
            "outcome",
        )
    if record.status != "open":
        raise invalid(f"This Checkout Session is {record.status} and can no longer be paid.")
    email = params.get("email") or "shopper@example.com"
    name = params.get("name") or "Test Shopper"
    # A debit is paid from the test IBAN with that outcome, as the hosted page would be.
    details = iban_details(TEST_IBANS[outcome], email, name) if method == "sepa_debit" else None
    enter_inputs(state, record, params)
    state.complete(record, email, name, method, settles_ok=outcome == "succeeded", details=details)
    return record.to_stripe()
