"""The module boundaries the architecture promises, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "storefront"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


SHOP_MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.name != "cli.py")


@pytest.mark.parametrize("path", SHOP_MODULES, ids=lambda p: p.name)
def test_the_shop_never_imports_the_sandbox(path: Path) -> None:
    # Only the command-line runner starts the two side by side.
    assert not any("sandbox" in name for name in imported_modules(path))


@pytest.mark.parametrize("path", SHOP_MODULES, ids=lambda p: p.name)
def test_only_payments_talks_to_stripe(path: Path) -> None:
    if path.name != "payments.py":
        assert "stripe" not in imported_modules(path)


def test_the_order_rules_know_no_web_framework() -> None:
    names = imported_modules(PACKAGE / "orders.py")
    assert not {"quart", "stripe", "werkzeug"} & {n.split(".")[0] for n in names}
