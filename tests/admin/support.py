"""Helpers for back-office tests: a staff account and a signed-in client."""

from __future__ import annotations

import re
from typing import Any

from quart import Quart

from storefront.admin.auth import Passwords

EMAIL = "keeper@example.com"
PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def add_staff(app: Quart, email: str = EMAIL, password: str = PASSWORD) -> None:
    """Create a staff account in the app's store."""
    await app.extensions["db"].add_staff(email, Passwords().hash(password))


def csrf_of(html: str) -> str:
    """The first CSRF token in a page."""
    found = _TOKEN.search(html)
    assert found, "no csrf_token on the page"
    return found.group(1)


async def sign_in(client: Any, email: str = EMAIL, password: str = PASSWORD) -> Any:
    """Sign in through the form as a browser would; return the answer."""
    page = await client.get("/admin/login")
    token = csrf_of(await page.get_data(as_text=True))
    return await client.post(
        "/admin/login", form={"email": email, "password": password, "csrf_token": token}
    )


async def session_csrf(client: Any) -> str:
    """The signed-in session's CSRF token, read from the order list."""
    page = await client.get("/admin/")
    assert page.status_code == 200
    return csrf_of(await page.get_data(as_text=True))
