"""GET /healthz, for the proxy: 200 when the database answers at the current schema."""

from __future__ import annotations

from quart import Quart
from quart.testing import QuartClient

from storefront import migrations


async def test_healthz_is_ok_on_a_current_schema(client: QuartClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert await response.get_json() == {"ok": True}
    assert response.headers["Cache-Control"] == "no-store"


async def test_healthz_is_503_naming_the_migration_when_the_schema_is_behind(
    shop: Quart, client: QuartClient
) -> None:
    db = shop.extensions["db"]
    await db.execute("UPDATE alembic_version SET version_num = '0001'")
    response = await client.get("/healthz")
    assert response.status_code == 503
    body = await response.get_json()
    assert body["ok"] is False and "storefront migrate" in body["reason"]
    await db.execute("UPDATE alembic_version SET version_num = ?", (migrations.HEAD,))
    assert (await client.get("/healthz")).status_code == 200


async def test_healthz_is_503_when_the_database_is_gone(shop: Quart, client: QuartClient) -> None:
    await shop.extensions["db"].close()
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert (await response.get_json())["ok"] is False
