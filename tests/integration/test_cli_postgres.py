"""The storefront command on PostgreSQL: STOREFRONT_DATABASE_URL picks it everywhere."""

from __future__ import annotations

import io

import psycopg
import pytest

from storefront import migrations
from storefront.cli import main
from storefront.serving import free_port
from tests.pg import Cluster


@pytest.fixture
def empty_url(pg_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> str:
    url = pg_cluster.new_database(migrated=False)
    monkeypatch.setenv("STOREFRONT_DATABASE_URL", url)
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    return url


def test_migrate_creates_the_schema_then_products_can_be_added(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert f"migrated from empty to {migrations.HEAD}" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert f"already at {migrations.HEAD}" in capsys.readouterr().out
    argv = ["add-product", "--slug", "mug", "--name", "Mug", "--price", "18", "--currency", "eur"]
    assert main(argv) == 0
    with psycopg.connect(empty_url) as conn:
        rows = conn.execute("SELECT slug, unit_amount, active FROM products").fetchall()
    assert rows == [("mug", 1800, 1)]
    argv += ["--stock", "3", "--kind", "physical"]
    assert main(argv) == 0
    with psycopg.connect(empty_url) as conn:
        rows = conn.execute("SELECT stock, reserved, kind FROM products").fetchall()
    assert rows == [(3, 0, "physical")]


def test_add_user_stores_a_hash_on_postgresql(
    empty_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password 1\n"))
    assert main(["add-user", "--email", "Keeper@Example.com", "--password-stdin"]) == 0
    with psycopg.connect(empty_url) as conn:
        [(email, stored)] = conn.execute("SELECT email, password_hash FROM staff_users").fetchall()
    assert email == "keeper@example.com" and stored.startswith("$argon2id$")
    assert "a long password" not in capsys.readouterr().out


def test_serve_refuses_an_unmigrated_database_in_one_line(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert "run `storefront migrate`" in err and len(err.splitlines()) == 1


def test_an_unreachable_server_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://shop:hunter2@127.0.0.1:{free_port()}/shop"
    monkeypatch.setenv("STOREFRONT_DATABASE_URL", url)
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    assert main(["serve", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach the database" in err and "hunter2" not in err
    assert len(err.splitlines()) == 1
