"""The back office refuses anyone not signed in, forged forms, guessing and caching."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from tests.admin.support import EMAIL, PASSWORD, add_staff, csrf_of, session_csrf, sign_in

# Every admin URL but the sign-in page, with the method it answers.
ADMIN_URLS = [
    ("GET", "/admin/"),
    ("GET", "/admin/?status=paid&q=x"),
    ("GET", "/admin/orders.csv"),
    ("GET", "/admin/orders/1"),
    ("POST", "/admin/orders/1/refund"),
    ("POST", "/admin/orders/1/fulfil"),
    ("POST", "/admin/orders/1/check"),
    ("GET", "/admin/webhooks"),
    ("POST", "/admin/webhooks/evt_1/apply"),
    ("POST", "/admin/logout"),
    ("GET", "/admin/products"),
    ("GET", "/admin/products/new"),
    ("POST", "/admin/products/new"),
    ("GET", "/admin/products/mug"),
    ("POST", "/admin/products/mug"),
    ("POST", "/admin/products/mug/deactivate"),
]


def session_cookie(answer: Any) -> str:
    """The Set-Cookie header that carries the session."""
    found = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith("sf_admin=")]
    assert len(found) == 1, answer.headers.getlist("Set-Cookie")
    return found[0]


@pytest.mark.parametrize(("method", "url"), ADMIN_URLS)
async def test_every_admin_url_sends_anonymous_requests_to_sign_in(
    shop: Quart, method: str, url: str
) -> None:
    client = shop.test_client()
    answer = await client.open(url, method=method, form={} if method == "POST" else None)
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/admin/login")
    assert answer.headers["Cache-Control"] == "no-store"
    htmx = await client.open(url, method=method, headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == "/admin/login"


@pytest.mark.parametrize(("method", "url"), ADMIN_URLS)
async def test_cross_site_requests_are_refused_even_when_signed_in(
    shop: Quart, method: str, url: str
) -> None:
    await add_staff(shop)
    client = shop.test_client()
    await sign_in(client)
    token = await session_csrf(client)
    for site in ("cross-site", "same-site"):
        answer = await client.open(
            url,
            method=method,
            form={"csrf_token": token} if method == "POST" else None,
            headers={"Sec-Fetch-Site": site},
        )
        assert answer.status_code == 403, site
    if method == "POST":
        # A browser without Sec-Fetch-Site but with another site's Origin.
        answer = await client.post(
            url, form={"csrf_token": token}, headers={"Origin": "https://evil.example"}
        )
        assert answer.status_code == 403


async def test_forms_without_the_sessions_csrf_token_are_refused(shop: Quart) -> None:
    await add_staff(shop)
    client = shop.test_client()
    await sign_in(client)
    for form in ({}, {"csrf_token": "forged"}):
        answer = await client.post("/admin/logout", form=form)
        assert answer.status_code == 403
    # Still signed in: the refused logout changed nothing.
    assert (await client.get("/admin/")).status_code == 200
    token = await session_csrf(client)
    assert (await client.post("/admin/logout", form={"csrf_token": token})).status_code == 303
    assert (await client.get("/admin/")).status_code == 303


async def test_the_login_form_needs_its_own_token(shop: Quart) -> None:
    await add_staff(shop)
    client = shop.test_client()
    answer = await client.post("/admin/login", form={"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 403


async def test_a_failed_login_says_the_same_whichever_part_was_wrong(shop: Quart) -> None:
    await add_staff(shop)
    texts = set()
    for email, password in ((EMAIL, "wrong password!"), ("nobody@example.com", PASSWORD)):
        answer = await sign_in(shop.test_client(), email, password)
        assert answer.status_code == 401
        page = await answer.get_data(as_text=True)
        texts.add(page.replace(csrf_of(page), ""))
    assert len(texts) == 1 and "Wrong email or password." in texts.pop()


async def test_brute_force_is_throttled_per_account(shop: Quart) -> None:
    await add_staff(shop)
    statuses = [
        (await sign_in(shop.test_client(), EMAIL, f"guess number {n}")).status_code
        for n in range(7)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    # Even the right password waits now: the throttle does not leak which guess was right.
    answer = await sign_in(shop.test_client())
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1


async def test_session_id_is_new_at_login_and_a_planted_one_is_worthless(shop: Quart) -> None:
    await add_staff(shop)
    client = shop.test_client()
    planted = "attacker-chosen-session-id"
    client.set_cookie("localhost", "sf_admin", planted)
    answer = await sign_in(client)
    assert answer.status_code == 303
    cookie = session_cookie(answer)
    assert planted not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    issued = cookie.split("sf_admin=", 1)[1].split(";", 1)[0]
    assert len(issued) >= 40
    # The planted id opens nothing; the issued one does.
    other = shop.test_client()
    other.set_cookie("localhost", "sf_admin", planted)
    assert (await other.get("/admin/")).status_code == 303
    mine = shop.test_client()
    mine.set_cookie("localhost", "sf_admin", issued)
    assert (await mine.get("/admin/")).status_code == 200
    # A second login replaces the first session.
    again = await sign_in(mine)
    assert (await shop.test_client().get("/admin/")).status_code == 303
    renewed = session_cookie(again).split("sf_admin=", 1)[1].split(";", 1)[0]
    assert renewed != issued
    stale = shop.test_client()
    stale.set_cookie("localhost", "sf_admin", issued)
    assert (await stale.get("/admin/")).status_code == 303


async def test_no_admin_page_is_cached_and_public_pages_never_mention_it(shop: Quart) -> None:
    await add_staff(shop)
    client = shop.test_client()
    await sign_in(client)
    pages = ("/admin/", "/admin/orders.csv", "/admin/webhooks", "/admin/products", "/admin/login")
    for url in pages:
        answer = await client.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["Cache-Control"] == "no-store", url
    catalog = await shop.test_client().get("/")
    assert "admin" not in (await catalog.get_data(as_text=True)).lower()
