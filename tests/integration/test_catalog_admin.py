"""The shopkeeper's catalog: stock and kind from the command line, CSV, Stripe's own catalog."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from storefront.cli import main
from storefront.payments import STRIPE_API_VERSION
from tests.live import LiveStack


def rows(path: Path) -> dict[str, tuple]:
    with sqlite3.connect(path) as conn:
        return {
            r[0]: r[1:]
            for r in conn.execute("SELECT slug, unit_amount, currency, stock, kind FROM products")
        }


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "shop.sqlite3"
    monkeypatch.setenv("STOREFRONT_DATABASE", str(path))
    assert main(["init-db"]) == 0
    return path


def test_add_product_takes_stock_and_kind(database: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["add-product", "--slug", "mug", "--name", "Mug", "--price", "18", "--currency", "eur"]
    assert main([*args, "--stock", "12", "--kind", "physical"]) == 0
    assert rows(database)["mug"] == (1800, "eur", 12, "physical")
    assert main(args) == 0  # no stock given: unlimited again
    assert rows(database)["mug"] == (1800, "eur", None, "digital")
    capsys.readouterr()
    assert main([*args, "--stock", "-3"]) != 0
    assert "stock" in capsys.readouterr().err
    assert rows(database)["mug"] == (1800, "eur", None, "digital")


def test_import_reads_csv(database: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = tmp_path / "products.csv"
    good.write_text(
        "slug,name,price,currency,stock,kind,description\n"
        "mug,Mug,18.00,eur,5,physical,A mug\n"
        "ebook,E-book,9.5,eur,,digital,\n",
        encoding="utf-8",
    )
    assert main(["import-products", str(good)]) == 0
    assert rows(database) == {
        "mug": (1800, "eur", 5, "physical"),
        "ebook": (950, "eur", None, "digital"),
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("slug,name,price,currency,kind\ncup,Cup,3,eur,solid\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["import-products", str(bad)]) != 0
    assert "bad.csv:2" in capsys.readouterr().err
    assert "cup" not in rows(database)


async def test_sync_stripe_imports_active_products_and_prices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with LiveStack(tmp_path / "live.sqlite3") as stack:
        headers = {"Authorization": "Bearer sk_test_sandbox", "Stripe-Version": STRIPE_API_VERSION}
        async with aiohttp.ClientSession(headers=headers) as http:
            for data in (
                {
                    "name": "Lamp",
                    "shippable": "true",
                    "metadata[slug]": "desk-lamp",
                    "default_price_data[currency]": "eur",
                    "default_price_data[unit_amount]": "4999",
                },
                {"name": "Retired", "active": "false"},
                {"name": "No price"},
            ):
                async with http.post(f"{stack.sandbox_url}/v1/products", data=data) as r:
                    assert r.status == 200, await r.text()
        path = tmp_path / "synced.sqlite3"
        for name, value in {
            "STOREFRONT_DATABASE": str(path),
            "STRIPE_API_BASE": stack.sandbox_url,
        }.items():
            monkeypatch.setenv(name, value)
        assert await asyncio.to_thread(main, ["init-db"]) == 0
        assert await asyncio.to_thread(main, ["sync-stripe"]) == 0
    assert rows(path) == {"desk-lamp": (4999, "eur", None, "physical")}
