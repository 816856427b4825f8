"""``Idempotency-Key`` on POSTs, with Stripe's rule for what is saved.

Stripe saves the status and body of the first request made with a key once the
endpoint begins executing, failures included, and replays them for every later
request with that key. A request that fails parameter validation saves nothing,
nor does one refused before it reaches the endpoint (the sandbox's injected 500s):
those may be retried with the same key. A view marks the moment it begins executing
with ``begin_execution()``, after its parameters are validated.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from quart import Response, current_app, g, request

from .errors import StripeApiError

View = Callable[..., Awaitable[Any]]


def begin_execution() -> None:
    """Parameters are valid: from here on, the answer is saved under the key."""
    g.executing = True


def idempotency_error(message: str) -> StripeApiError:
    """A 400 ``idempotency_error`` (the SDK raises ``IdempotencyError``)."""
    return StripeApiError(400, message, type="idempotency_error")


def replay(stored: dict[str, Any], key: str) -> Response:
    """The stored answer, or an idempotency error when the request differs from the first."""
    if stored["endpoint"] != (request.method, request.path):
        raise idempotency_error(
            "Keys for idempotent requests can only be used for the same endpoint "
            f"they were first used for ({stored['endpoint'][0]} "
            f"{stored['endpoint'][1]}). Try using a key other than '{key}'."
        )
    if stored["fingerprint"] != json.dumps(g.params, sort_keys=True):
        raise idempotency_error(
            "Keys for idempotent requests can only be used with the same "
            f"parameters they were first used with. Try using a key other than "
            f"'{key}' if you meant to execute a different request."
        )
    response = Response(stored["body"], status=stored["status"], content_type="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    response.headers["Original-Request"] = stored["request_id"]
    return response


def idempotent(view: View) -> View:
    """Honour ``Idempotency-Key``: replay the saved answer or refuse other parameters."""

    @wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return await view(*args, **kwargs)
        state = current_app.extensions["sandbox"]
        scope = (g.api_key, key)
        # One lock per key: a concurrent twin waits, then replays the first answer.
        lock = state.idempotency_locks.setdefault(scope, asyncio.Lock())
        async with lock:
            stored = state.idempotency.get(scope)
            if stored is not None:
                return replay(stored, key)
            g.idempotency_key = key
            try:
                response = await current_app.make_response(await view(*args, **kwargs))
            except StripeApiError as error:
                if not g.get("executing"):
                    raise  # parameter validation failed: nothing is saved
                response = await current_app.make_response((error.body(), error.status))
            state.idempotency[scope] = {
                "endpoint": (request.method, request.path),
                "fingerprint": json.dumps(g.params, sort_keys=True),
                "status": response.status_code,
                "body": await response.get_data(as_text=True),
                "request_id": g.request_id,
            }
            return response

    return wrapper
