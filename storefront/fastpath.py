"""GET / from the cached catalog page, without Quart's per-request machinery.

The catalog is the shop's busiest page and, between renders, a splice of
fresh nonces into cached HTML (``CatalogPage``). Around that splice, Quart's
request context, URL matching, hooks and response object cost more CPU than
the page itself (bench/CPU.md). This middleware answers exactly that case:
a plain ``GET /`` while the cached render is fresh. It sends what Quart would
send: the same body, content type and length, and the same security headers
(``SecurityHeaders``). Everything else goes to Quart: other paths and methods,
a query string, a stale page (Quart renders it), and any error on the way (a
GET is safe to answer again, and Quart's error handling and logging apply).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from quart import Quart
from werkzeug.http import parse_cookie

from storefront.cart import COOKIE
from storefront.carts import is_cart_token

if TYPE_CHECKING:
    from storefront.store import Store

log = logging.getLogger(__name__)

AsgiApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]
CONTENT_TYPE = (b"content-type", b"text/html; charset=utf-8")


def install(app: Quart) -> None:
    """Put the fast path in front of ``app``'s ASGI entry (outermost)."""
    app.asgi_app = CatalogFastPath(app.asgi_app, app)  # type: ignore[method-assign]


class CatalogFastPath:
    """ASGI middleware: a fresh cached catalog page for plain ``GET /``; Quart for the rest."""

    def __init__(self, app: AsgiApp, quart: Quart) -> None:
        self.app = app
        self.quart = quart

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Answer from the cache when it may, else pass the request on untouched."""
        page = None
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == "/"
            and not scope["query_string"]
            and not scope.get("root_path")
        ):
            page = await self._page(scope["headers"])
        if page is None:
            await self.app(scope, receive, send)
            return
        body = page.encode()
        headers = [CONTENT_TYPE, (b"content-length", str(len(body)).encode())]
        for name, value in self.quart.extensions["security_headers"].items():
            headers.append((name.lower().encode(), value.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _page(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        extensions = self.quart.extensions
        try:
            count = await _cart_count(extensions["db"], headers)
        except Exception:
            # Quart answers this request again, with its error page and its log line.
            log.debug("catalog fast path declined", exc_info=True)
            return None
        page: str | None = extensions["catalog_page"].cached(count)
        return page


async def _cart_count(db: Store, headers: list[tuple[bytes, bytes]]) -> int:
    """The count ``storefront.cart.cart_count`` gives, read from the raw headers."""
    # As werkzeug reads request.cookies: every Cookie header, joined with ";".
    cookies = ";".join(value.decode() for name, value in headers if name.lower() == b"cookie")
    if not cookies:
        return 0
    token = parse_cookie(cookies).get(COOKIE)
    if not is_cart_token(token):
        return 0
    found = await db.cart(token)
    return found[1].count if found is not None else 0
