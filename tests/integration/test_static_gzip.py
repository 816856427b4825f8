"""Static text files gzipped at start-up: the headers, and bodies equal to the files."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import aiohttp
import pytest
from quart.typing import TestClientProtocol as QuartClient

from storefront.resources import STATIC
from storefront.static_files import precompress
from tests.live import LiveStack

TEXT_FILES = ["css/shop.css", "vendor/htmx.min.js", "img/favicon.svg", "img/products/mug.svg"]


async def fingerprinted(client: QuartClient, name: str) -> str:
    """The file's URL as the pages link it (with its content hash)."""
    page = await (await client.get("/cart")).get_data(as_text=True)
    found = re.search(r'"(/static/' + re.escape(name) + r'\?v=[0-9a-f]{12})"', page)
    assert found is not None, name
    return found.group(1)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("name", TEXT_FILES)
async def test_a_client_taking_gzip_gets_the_file_gzipped(client: QuartClient, name: str) -> None:
    response = await client.get(f"/static/{name}", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    body = await response.get_data()
    raw = (STATIC / name).read_bytes()
    assert gzip.decompress(body) == raw and len(body) < len(raw)
    plain = await client.get(f"/static/{name}")
    assert response.headers["Content-Type"] == plain.headers["Content-Type"]


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    "accept", [None, "identity", "gzip;q=0", "br", "deflate", "*;q=0", "gzip;q=0, *"]
)
async def test_a_client_refusing_gzip_gets_the_plain_file_and_the_vary(
    client: QuartClient, accept: str | None
) -> None:
    headers = {"Accept-Encoding": accept} if accept is not None else {}
    response = await client.get("/static/css/shop.css", headers=headers)
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert "Accept-Encoding" in response.headers["Vary"]
    assert await response.get_data() == (STATIC / "css/shop.css").read_bytes()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_fingerprinted_gzip_keeps_the_immutable_year_and_revalidates(
    client: QuartClient,
) -> None:
    url = await fingerprinted(client, "css/shop.css")
    gz = {"Accept-Encoding": "gzip"}
    response = await client.get(url, headers=gz)
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    etag = response.headers["ETag"]
    plain = await client.get(url)
    assert plain.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert plain.headers.get("ETag") != etag  # two representations, two tags
    again = await client.get(url, headers={**gz, "If-None-Match": etag})
    assert again.status_code == 304 and await again.get_data() == b""
    assert "Accept-Encoding" in again.headers["Vary"]
    # Without the current hash, the short default stays.
    short = await client.get("/static/css/shop.css", headers=gz)
    assert "immutable" not in short.headers["Cache-Control"]


def test_only_text_that_shrinks_is_precompressed(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("body { color: red; }\n" * 50)
    (tmp_path / "tiny.js").write_text("x")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG" + b"\x00" * 500)
    copies = precompress(tmp_path)
    assert set(copies) == {"a.css"}
    assert gzip.decompress(copies["a.css"].body) == (tmp_path / "a.css").read_bytes()
    assert precompress(tmp_path)["a.css"].body == copies["a.css"].body  # same bytes each time


async def test_over_http_the_shop_sends_gzip_and_the_body_is_the_file(tmp_path: Path) -> None:
    async with (
        LiveStack(tmp_path / "shop.sqlite3") as live,
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.get(
            f"{live.shop_url}/static/vendor/htmx.min.js", headers={"Accept-Encoding": "gzip"}
        ) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Vary"] == "Accept-Encoding"
        body = await response.read()
    assert gzip.decompress(body) == (STATIC / "vendor/htmx.min.js").read_bytes()
