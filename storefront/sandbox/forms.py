"""Parse Stripe's form encoding (``a[b][0][c]=v``) into nested dicts and lists."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def split_key(key: str) -> list[str]:
    """Split ``a[b][0]`` into ``["a", "b", "0"]``; ``a[]`` gives an empty last part."""
    match = _KEY.match(key)
    if match is None:
        raise invalid(f"Invalid parameter name: {key}", key)
    return [match.group(1), *_PART.findall(match.group(2))]


def parse_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Build the nested structure from ordered ``(key, value)`` pairs."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        node = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if part == "":
                # ``a[]`` appends: give it the next free index.
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                if isinstance(node.get(part), dict):
                    raise invalid(f"Invalid hash: {key} mixes a value and a hash", key)
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise invalid(f"Invalid hash: {key} mixes a value and a hash", key)
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all indices into lists, in index order."""
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def parse_body(body: str) -> dict[str, Any]:
    """Parse a form-encoded body or query string."""
    return parse_pairs(parse_qsl(body, keep_blank_values=True))
