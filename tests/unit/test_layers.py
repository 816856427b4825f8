"""The module boundaries the architecture promises, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "storefront"


def imported_modules(source: str, package: str = "storefront") -> set[str]:
    """Every module a source imports, dotted in full: ``from storefront import sandbox``
    counts as ``storefront.sandbox``, ``from . import x`` is resolved against ``package``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, node.module] if node.module else parent)
            else:
                base = node.module or ""
            names.add(base)
            # The imported names may be modules themselves (from a package import x).
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def imports_package(names: set[str], package: str) -> bool:
    """True if any of ``names`` is ``package`` or inside it."""
    return any(name == package or name.startswith(f"{package}.") for name in names)


def source_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


SHOP_MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.name != "cli.py")


@pytest.mark.parametrize("path", SHOP_MODULES, ids=lambda p: p.name)
def test_the_shop_never_imports_the_sandbox(path: Path) -> None:
    # Only the command-line runner starts the two side by side.
    assert not imports_package(imported_modules(source_of(path)), "storefront.sandbox")


@pytest.mark.parametrize("path", SHOP_MODULES, ids=lambda p: p.name)
def test_only_payments_talks_to_stripe(path: Path) -> None:
    if path.name != "payments.py":
        assert not imports_package(imported_modules(source_of(path)), "stripe")


def test_the_order_rules_know_no_web_framework() -> None:
    names = imported_modules(source_of(PACKAGE / "orders.py"))
    for framework in ("quart", "stripe", "werkzeug"):
        assert not imports_package(names, framework)


@pytest.mark.parametrize(
    "source",
    [
        "import storefront.sandbox",
        "import storefront.sandbox.api as api",
        "from storefront import sandbox",
        "from storefront.sandbox import create_sandbox_app",
        "from storefront.sandbox.api import bp",
        "from . import sandbox",
        "from .sandbox import SandboxSettings",
        "def f():\n    from storefront import sandbox\n",
    ],
)
def test_the_detector_sees_every_form_of_a_sandbox_import(source: str) -> None:
    assert imports_package(imported_modules(source), "storefront.sandbox")


@pytest.mark.parametrize(
    "source",
    [
        "import stripe",
        "import stripe.checkout",
        "import stripe.checkout as checkout",
        "from stripe import StripeClient",
        "from stripe.checkout import Session",
        "if TYPE_CHECKING:\n    import stripe\n",
    ],
)
def test_the_detector_sees_every_form_of_a_stripe_import(source: str) -> None:
    assert imports_package(imported_modules(source), "stripe")


@pytest.mark.parametrize(
    ("source", "package"),
    [
        ("import stripey", "stripe"),
        ("from storefront import sandboxes", "storefront.sandbox"),
        ("from storefront import orders", "storefront.sandbox"),
        ("from storefront.payments import StripePayments", "stripe"),
    ],
)
def test_the_detector_does_not_cry_wolf(source: str, package: str) -> None:
    assert not imports_package(imported_modules(source), package)


@pytest.mark.parametrize("name", ["orders.py", "evidence.py", "paid_lines.py", "carts.py"])
def test_the_rules_do_no_io(name: str) -> None:
    # Rules apart from storage: every backend's store calls them.
    names = imported_modules(source_of(PACKAGE / name))
    for storage in ("sqlite3", "aiosqlite", "storefront.db", "storefront.store", "quart"):
        assert not imports_package(names, storage), storage


def test_every_query_lives_in_a_store() -> None:
    # SQL outside storefront/store/ (and db.py's schema check) would be a query a
    # second backend cannot replace.
    keywords = ("SELECT ", "UPDATE ", "INSERT INTO", "DELETE FROM")
    offenders = [
        path.name
        for path in SHOP_MODULES
        if path.name != "db.py" and any(k in source_of(path) for k in keywords)
    ]
    assert offenders == []
