"""POST /webhook: verify Stripe's signature, dedupe, apply in one transaction."""

from __future__ import annotations

import logging

from quart import Blueprint, current_app, jsonify, request
from quart.typing import ResponseReturnValue

from storefront.db import DatabaseGone
from storefront.fulfilment import apply_event
from storefront.payments import PaymentError, SignatureError

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@bp.post("/webhook")
async def webhook() -> ResponseReturnValue:
    """Answer 2xx only once the event is committed, so Stripe retries otherwise."""
    payload = await request.get_data(cache=False)
    try:
        event = current_app.extensions["payments"].verify_webhook(
            payload, request.headers.get("Stripe-Signature")
        )
    except SignatureError as error:
        log.warning("webhook refused: %s", error)
        return jsonify(error="invalid signature"), 400
    if "\x00" in event.id or "\x00" in event.type:
        # No event Stripe sends has one, and PostgreSQL cannot store it: refuse alike.
        log.warning("webhook refused: a NUL character in its id or type")
        return jsonify(error="malformed event"), 400
    # An exception from here on becomes a 500: nothing was committed, Stripe retries.
    # That includes a locked database (past its busy timeout) or a crash mid-way.
    try:
        result = await apply_event(
            current_app.extensions["db"], event, current_app.extensions["payments"]
        )
    except PaymentError as error:
        log.warning(
            "event %s (%s): Stripe look-up failed, retry later: %s", event.id, event.type, error
        )
        return jsonify(error="try again later"), 503
    except DatabaseGone as error:
        # Not committed anywhere that lasts: Stripe must keep the event and retry.
        log.critical("event %s (%s) not recorded: %s", event.id, event.type, error)
        return jsonify(error="try again later"), 503
    log.info("event %s (%s): %s", event.id, event.type, result)
    return jsonify(received=True, result=result.value), 200
