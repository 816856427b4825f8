"""Reading security headers as browsers do, so tests assert directives, not substrings."""

from __future__ import annotations


def parse_csp(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: [sources]}; a repeated directive fails."""
    policy: dict[str, list[str]] = {}
    for part in header.split(";"):
        tokens = part.split()
        if not tokens:
            continue
        name = tokens[0].lower()
        # Browsers ignore a repeated directive: a test must not be fooled by it.
        assert name not in policy, f"directive {name} appears twice in {header!r}"
        policy[name] = tokens[1:]
    return policy
