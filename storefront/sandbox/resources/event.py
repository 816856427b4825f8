"""Events: a frozen snapshot of the object they are about."""

from __future__ import annotations

import copy
from typing import Any

from ..objects import API_VERSION, new_id


def event_object(
    event_type: str,
    snapshot: dict[str, Any],
    created: int,
    pending_webhooks: int,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The complete ``event``; ``previous_attributes`` only where a change is reported."""
    data: dict[str, Any] = {"object": copy.deepcopy(snapshot)}
    if previous_attributes is not None:
        data["previous_attributes"] = copy.deepcopy(previous_attributes)
    return {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
