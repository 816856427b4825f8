"""POST /webhook: verify Stripe's signature, dedupe, apply in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from quart import Blueprint, current_app, jsonify, request
from quart.typing import ResponseReturnValue

from storefront.db import DatabaseGone
from storefront.fulfilment import apply_event
from storefront.payments import PaymentError, PaymentGateway, SignatureError
from storefront.store import Store

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@bp.post("/webhook")
async def webhook() -> ResponseReturnValue:
    """Answer 2xx only once the event is committed, so Stripe retries otherwise."""
    payload = await request.get_data(cache=False)
    extensions = current_app.extensions
    answer, status = await receive(
        extensions["payments"],
        extensions["db"],
        payload,
        request.headers.get("Stripe-Signature"),
        lines_due=lines_due(extensions),
    )
    return jsonify(answer), status


def lines_due(extensions: Mapping[str, Any]) -> Callable[[int], None] | None:
    """The running line-items task's wake-up, if the app runs one."""
    task = extensions.get("line_items")
    return task.due if task is not None else None


async def receive(
    payments: PaymentGateway,
    db: Store,
    payload: bytes,
    signature: str | None,
    *,
    lines_due: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], int]:
    """One delivery's JSON answer and status (also for storefront.fastpath).

    Anything else raised means nothing was committed: the caller answers 500.
    The answer never waits on Stripe's line items: ``lines_due`` hands them
    to the line-items task.
    """
    try:
        event = payments.verify_webhook(payload, signature)
    except SignatureError as error:
        log.warning("webhook refused: %s", error)
        return {"error": "invalid signature"}, 400
    if "\x00" in event.id or "\x00" in event.type:
        # No event Stripe sends has one, and PostgreSQL cannot store it: refuse alike.
        log.warning("webhook refused: a NUL character in its id or type")
        return {"error": "malformed event"}, 400
    # An exception from here on becomes a 500: nothing was committed, Stripe retries.
    # That includes a locked database (past its busy timeout) or a crash mid-way.
    try:
        result = await apply_event(db, event, payments, lines_due=lines_due)
    except PaymentError as error:
        log.warning(
            "event %s (%s): Stripe look-up failed, retry later: %s", event.id, event.type, error
        )
        return {"error": "try again later"}, 503
    except DatabaseGone as error:
        # Not committed anywhere that lasts: Stripe must keep the event and retry.
        log.critical("event %s (%s) not recorded: %s", event.id, event.type, error)
        return {"error": "try again later"}, 503
    log.info("event %s (%s): %s", event.id, event.type, result)
    return {"received": True, "result": result.value}, 200
