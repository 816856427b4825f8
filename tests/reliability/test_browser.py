"""In a real browser: cross-site forms refused, same-origin no-JS posts work, no double submit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Request
from quart import Quart

from storefront.serving import BackgroundServer
from tests.live import live_database_url
from tests.reliability.conftest import Stack


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    # Slow API answers keep the first Buy in flight while the shopper clicks again.
    database = tmp_path_factory.mktemp("browser") / "shop.sqlite3"
    url = live_database_url(request)
    async with Stack(database, latency_ms=300, database_url=url) as live:
        yield live


def attacker_site(shop_url: str) -> Quart:
    """Another site whose page carries a form aimed at the shop's checkout."""
    app = Quart(__name__)

    @app.get("/")
    async def page() -> str:
        return (
            "<!doctype html><title>Win a prize</title>"
            f'<form method="post" action="{shop_url}/checkout/enamel-mug">'
            '<input type="hidden" name="attempt" value="forged-attempt-000000">'
            "<button>Claim your prize</button></form>"
        )

    return app


async def order_count(stack: Stack) -> int:
    row = await stack.db.fetch_one("SELECT count(*) AS n FROM orders")
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize("javascript", [False, True], ids=["no-js", "js"])
async def test_a_form_on_another_site_is_refused(
    browser: Browser, stack: Stack, javascript: bool
) -> None:
    before = await order_count(stack)
    async with BackgroundServer(attacker_site(stack.shop_url)) as evil:
        context = await browser.new_context(java_script_enabled=javascript)
        page = await context.new_page()
        # localhost and 127.0.0.1 are different sites to the browser.
        await page.goto(f"http://localhost:{evil.port}/")
        async with page.expect_response(re.compile(r"/checkout/")) as answer:
            await page.get_by_role("button", name="Claim your prize").click()
        response = await answer.value
        assert response.status == 403
        assert "Request refused" in await page.content()
        await context.close()
    assert await order_count(stack) == before


async def test_a_same_origin_post_without_javascript_works(browser: Browser, stack: Stack) -> None:
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(stack.shop_url)
    await page.get_by_role("button", name=re.compile("^Buy Canvas tote")).click()
    await page.wait_for_url(re.compile(re.escape(stack.sandbox_url) + r"/c/pay/cs_test_\w+"))
    await context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
async def test_a_double_click_on_buy_makes_one_session(
    browser: Browser, stack: Stack, javascript: bool
) -> None:
    context = await browser.new_context(java_script_enabled=javascript)
    page = await context.new_page()
    posts: list[Request] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    await page.goto(stack.shop_url)
    sessions_before = len(stack.sandbox_state.sessions)
    orders_before = await order_count(stack)
    buy = page.get_by_role("button", name=re.compile("^Buy Dotted notebook"))
    await buy.click(click_count=3, delay=30)
    await page.wait_for_url(re.compile(re.escape(stack.sandbox_url) + r"/c/pay/cs_test_\w+"))
    assert len(stack.sandbox_state.sessions) == sessions_before + 1
    assert await order_count(stack) == orders_before + 1
    if javascript:
        # htmx disables the button and drops clicks while the first request runs.
        assert len([r for r in posts if "/checkout/" in r.url]) == 1
    await context.close()
