"""List envelopes, pagination, expansion and filter parameters, shaped like Stripe's."""

from __future__ import annotations

from typing import Any

from .errors import invalid, no_such
from .objects import list_object


def parse_limit(params: dict[str, Any]) -> int:
    """``limit`` between 1 and 100, default 10."""
    raw = params.get("limit", "10")
    if not isinstance(raw, str) or not raw.isdigit():
        raise invalid(f"Invalid integer: {raw}", "limit")
    limit = int(raw)
    if not 1 <= limit <= 100:
        raise invalid("This value must be between 1 and 100.", "limit")
    return limit


def paginate(
    items: list[dict[str, Any]], params: dict[str, Any], url: str, kind: str
) -> dict[str, Any]:
    """Cut a newest-first list with ``limit``, ``starting_after`` and ``ending_before``."""
    limit = parse_limit(params)
    ids = [item["id"] for item in items]
    if params.get("starting_after"):
        cursor = params["starting_after"]
        if cursor not in ids:
            raise no_such(kind, cursor, "starting_after")
        items = items[ids.index(cursor) + 1 :]
    elif params.get("ending_before"):
        cursor = params["ending_before"]
        if cursor not in ids:
            raise no_such(kind, cursor, "ending_before")
        before = items[: ids.index(cursor)]
        return list_object(url, before[-limit:], has_more=len(before) > limit)
    return list_object(url, items[:limit], has_more=len(items) > limit)


def expansions(params: dict[str, Any], allowed: set[str], prefix: str = "") -> set[str]:
    """The requested ``expand[]`` paths; 400 for ones the sandbox cannot expand."""
    raw = params.get("expand", [])
    if not isinstance(raw, list):
        raise invalid("Invalid array", "expand")
    wanted = set()
    for index, path in enumerate(raw):
        name = path.removeprefix(prefix) if prefix else path
        if name not in allowed:
            raise invalid(f"This property cannot be expanded ({path}).", f"expand[{index}]")
        wanted.add(name)
    return wanted


def parse_bool(value: Any, param: str) -> bool:
    """Stripe's ``true``/``false`` parameters."""
    if value in ("true", "false"):
        return value == "true"
    raise invalid(f"Invalid boolean: {value}", param)


def type_matches(pattern: str, event_type: str) -> bool:
    """``type`` filters accept a trailing ``*`` wildcard as Stripe's do."""
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type
