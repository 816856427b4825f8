"""The storefront command on a real database file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storefront import migrations
from storefront.cli import main


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("STOREFRONT_DATABASE", str(path))
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    return path


def products(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT slug, name, unit_amount, currency, active FROM products ORDER BY slug"
        ).fetchall()


def test_init_db_is_safe_to_repeat(database: Path) -> None:
    assert main(["init-db"]) == 0
    assert main(["init-db"]) == 0
    with sqlite3.connect(database) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"products", "orders", "order_events", "webhook_events"} <= tables


def test_add_product_then_update_it_by_slug(database: Path) -> None:
    assert (
        main(
            ["add-product", "--slug", "mug", "--name", "Mug", "--price", "18", "--currency", "EUR"]
        )
        == 0
    )
    assert (
        main(
            [
                "add-product",
                "--slug",
                "mug",
                "--name",
                "Big mug",
                "--price",
                "19.50",
                "--currency",
                "eur",
                "--inactive",
            ]
        )
        == 0
    )
    assert products(database) == [("mug", "Big mug", 1950, "eur", 0)]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--slug", "Bad Slug", "--name", "x", "--price", "1", "--currency", "eur"], "slug"),
        (["--slug", "ok", "--name", "x", "--price", "1.999", "--currency", "eur"], "decimal"),
        (["--slug", "ok", "--name", "x", "--price", "-1", "--currency", "eur"], "positive"),
        (["--slug", "ok", "--name", "x", "--price", "1", "--currency", "euro"], "three-letter"),
        (["--slug", "ok", "--name", " ", "--price", "1", "--currency", "eur"], "name"),
    ],
)
def test_bad_products_are_refused_with_a_clear_message(
    database: Path, capsys: pytest.CaptureFixture[str], args: list[str], complaint: str
) -> None:
    assert main(["init-db"]) == 0
    assert main(["add-product", *args]) == 2
    assert complaint in capsys.readouterr().err
    assert products(database) == []


def test_import_is_all_or_nothing(database: Path, tmp_path: Path) -> None:
    good = Path(__file__).resolve().parents[2] / "data" / "products.toml"
    assert main(["import-products", str(good)]) == 0
    assert len(products(database)) == 4

    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[product]]\nslug = "new-one"\nname = "New"\nprice = "5"\ncurrency = "eur"\n'
        '[[product]]\nslug = "broken"\nname = "Broken"\nprice = "free"\ncurrency = "eur"\n'
    )
    assert main(["import-products", str(bad)]) == 2
    assert "new-one" not in {p[0] for p in products(database)}


def test_production_mode_without_webhook_secret_fails_at_start(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_abcdefghijkl")
    assert main(["init-db"]) == 2
    err = capsys.readouterr().err
    assert "STRIPE_WEBHOOK_SECRET" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["reconcile", "--older-than", "-5"], "--older-than"),
        (["reconcile", "--older-than", "nan"], "--older-than"),
        (["reconcile", "--older-than", "inf"], "--older-than"),
        (["reconcile", "--older-than", "1e20"], "--older-than"),
        (["serve", "--port", "0"], "--port"),
        (["serve", "--port", "65536"], "--port"),
        (["serve", "--sandbox-port", "http"], "--sandbox-port"),
        (["sandbox", "--port", "-1"], "--port"),
    ],
)
def test_malformed_numeric_options_stop_with_one_line(
    database: Path, capsys: pytest.CaptureFixture[str], args: list[str], option: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be" in err and err.count("\n") == 1
    assert not database.exists()  # stopped before touching anything


@pytest.mark.parametrize(
    "environ",
    [
        {"STOREFRONT_RECONCILE_AFTER": "nan"},
        {"STOREFRONT_RECONCILE_AFTER": "inf"},
        {"STOREFRONT_RECONCILE_AFTER": "1e20"},
        {"STOREFRONT_STATUS_SYNC_AFTER": "nan"},
        {"STOREFRONT_RECONCILE_INTERVAL": "-inf"},
        {"STOREFRONT_CHECKOUT_RATE_LIMIT": "lots"},
    ],
    ids=lambda e: "=".join(next(iter(e.items()))),
)
def test_malformed_numeric_settings_stop_every_command_with_one_line(
    database: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    for command in (["init-db"], ["reconcile"], ["serve", "--port", "1"]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.startswith(f"storefront: configuration error: {name} must be ")
        assert err.count("\n") == 1
    assert not database.exists()


def test_reconcile_with_a_valid_threshold_runs(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init-db"]) == 0
    assert main(["reconcile", "--older-than", "0"]) == 0
    assert "checked 0 open orders" in capsys.readouterr().out


def test_reconcile_never_creates_a_database(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An empty database made here would let `serve` start on it afterwards.
    assert main(["reconcile"]) == 2
    err = capsys.readouterr().err
    assert "storefront init-db" in err and err.count("\n") == 1
    assert not database.exists()


def test_serve_refuses_an_old_schema_with_one_line_naming_migrate(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init-db"]) == 0
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"this shop needs {migrations.HEAD}: run `storefront migrate`" in err
