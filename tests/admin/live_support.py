"""Back-office tests over real HTTP: a signed-in staff client, paid orders, waiting."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from storefront.admin.auth import Passwords
from tests.admin.support import EMAIL, PASSWORD
from tests.live import LiveStack, buy, pay

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_ATTEMPT = re.compile(r'name="attempt" value="([^"]+)"')


class Staff:
    """A browser-like client signed in to the back office."""

    def __init__(self, stack: LiveStack, http: aiohttp.ClientSession):
        self.stack, self.http = stack, http
        self.csrf = ""

    @classmethod
    async def sign_in(cls, stack: LiveStack) -> Staff:
        """Create the account, open a client with its own cookie jar and sign in."""
        await stack.db.add_staff(EMAIL, Passwords().hash(PASSWORD))
        # Cookies of a shop on 127.0.0.1: aiohttp keeps IP-address cookies only when unsafe.
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        staff = cls(stack, http)
        page = await staff.get("/admin/login")
        status, _ = await staff.post(
            "/admin/login",
            {"email": EMAIL, "password": PASSWORD, "csrf_token": _TOKEN.findall(page)[0]},
        )
        assert status == 303
        staff.csrf = _TOKEN.findall(await staff.get("/admin/"))[0]
        return staff

    async def close(self) -> None:
        """Close the client."""
        await self.http.close()

    async def get(self, path: str) -> str:
        """GET a page; it must answer 200."""
        async with self.http.get(self.stack.shop_url + path, allow_redirects=False) as answer:
            assert answer.status == 200, (path, answer.status)
            assert answer.headers["Cache-Control"] == "no-store"
            return await answer.text()

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        """POST a form with the session's CSRF token; the status and the Location or body."""
        data = {"csrf_token": self.csrf, **form}
        headers = {"Origin": self.stack.shop_url}
        async with self.http.post(
            self.stack.shop_url + path, data=data, headers=headers, allow_redirects=False
        ) as answer:
            return answer.status, answer.headers.get("Location") or await answer.text()

    async def refund(self, order_id: int, amount: str = "") -> tuple[int, str]:
        """Press Refund on the order page (with the page's own attempt nonce)."""
        page = await self.get(f"/admin/orders/{order_id}")
        attempt = _ATTEMPT.findall(page)[0]
        return await self.post(
            f"/admin/orders/{order_id}/refund", {"amount": amount, "attempt": attempt}
        )


async def paid_order(
    http: aiohttp.ClientSession, stack: LiveStack, card: str = "4242 4242 4242 4242"
) -> dict[str, Any]:
    """Buy the mug and pay for it; the order once the webhook has made it paid."""
    token, pay_url = await buy(http, stack, "enamel-mug")
    await pay(http, pay_url, card)
    await stack.wait_for_status(token, "paid")
    return await stack.order(token)


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (value := await check()):
        if loop.time() > deadline:
            raise AssertionError(f"not true within {within} s: {check.__qualname__}")
        await asyncio.sleep(0.05)
    return value
