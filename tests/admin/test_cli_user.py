"""storefront add-user: an argon2 hash in the database, never the password; bad input refused."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from storefront.cli import main


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("STOREFRONT_DATABASE", str(path))
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["init-db"]) == 0
    return path


def accounts(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT email, password_hash FROM staff_users").fetchall()


def add_user(monkeypatch: pytest.MonkeyPatch, email: str, password: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["add-user", "--email", email, "--password-stdin"])


def test_add_user_stores_an_argon2_hash_and_a_second_run_changes_the_password(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add_user(monkeypatch, "Keeper@Example.com", "first password 1") == 0
    [(email, stored)] = accounts(database)
    assert email == "keeper@example.com" and stored.startswith("$argon2id$")
    assert "first password" not in stored and "first password" not in capsys.readouterr().out
    assert PasswordHasher().verify(stored, "first password 1")
    assert add_user(monkeypatch, "keeper@example.com", "second password 2") == 0
    [(_, again)] = accounts(database)
    assert PasswordHasher().verify(again, "second password 2")


@pytest.mark.parametrize(
    ("email", "password", "says"),
    [
        ("keeper@example.com", "short", "at least 12"),
        ("not-an-email", "long enough pass", "email"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_saves_nothing(
    database: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    email: str,
    password: str,
    says: str,
) -> None:
    assert add_user(monkeypatch, email, password) != 0
    err = capsys.readouterr().err.strip()
    assert says in err and err.count("\n") == 0 and password not in err
    assert accounts(database) == []
