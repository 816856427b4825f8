"""The three busiest routes answered without Quart's per-request machinery.

A cached catalog page (``CatalogPage``), a webhook delivery and an unchanged
receipt poll cost less CPU than Quart's request context, URL matching, hooks
and response object around them (bench/CPU.md, bench/POLLS.md). This
middleware answers exactly these requests:

- ``GET /`` while the cached catalog render is fresh;
- ``POST /webhook`` whose body arrives within a second and the body limit;
- ``GET /orders/<token>/status?v=<version>&every=<seconds>``, spelled as the
  receipt's poller sends it, when ``receipts.decide`` (the view's own rules)
  answers an empty 204: same version and interval, no Stripe sync due.

It sends what Quart would: the same body, content type and length, and the
same security headers (``SecurityHeaders``), with ``no-store`` and no length
on the poll's 204; the webhook's answer comes from the view's own
``webhooks.receive``. Everything else goes to Quart untouched: other paths
and methods, any other query string, a stale catalog (Quart renders it), a
poll whose answer is anything but that 204 (a changed order, a new interval,
a sync due, which Quart takes the limiter's slot for, an unknown token).
A webhook body past the limit or still arriving after a second goes to Quart
with the part already read handed over again (Quart answers 413, or waits
with its own BODY_TIMEOUT), and so does a delivery that raised unexpectedly:
nothing was committed (``webhooks.receive``), so Quart's answer, error page
and log line are the request's; a poll whose read raised goes to Quart too.

Once the app has started (its lifespan startup complete), the objects built
so far are moved out of the garbage collector's way (``freeze_startup_heap``):
they live as long as the process, yet every full collection walked them
(about 108,000 of a worker's 265,000 tracked objects under 2,000 open
receipt pages), pausing every request in flight (bench/README.md, findings).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
)
from quart import Quart
from werkzeug.http import parse_cookie

from storefront import receipts, webhooks
from storefront.cart import COOKIE
from storefront.carts import is_cart_token

if TYPE_CHECKING:
    from storefront.store import Store

log = logging.getLogger(__name__)

AsgiApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]
HTML = b"text/html; charset=utf-8"
# What receipts' after-request hook adds to every receipt response, the 204 included.
NO_STORE = ((b"cache-control", b"no-store"),)
# The receipt poller's URL as the page carries it (receipts.Poll: token, version, interval);
# any other spelling (more parameters, escapes, another order) is Quart's to read.
POLL_PATH = re.compile(r"/orders/([A-Za-z0-9_-]{32})/status")
POLL_QUERY = re.compile(rb"v=([0-9a-f]{16})&every=([1-9][0-9]{0,5})")
# A webhook body still incomplete after this long goes to Quart, whose BODY_TIMEOUT applies.
BODY_GRACE = 1.0


def install(app: Quart) -> None:
    """Put the fast path in front of ``app``'s ASGI entry (outermost)."""
    app.asgi_app = FastPath(app.asgi_app, app)  # type: ignore[method-assign]


class FastPath:
    """ASGI middleware: the cached catalog, webhooks, unchanged polls; Quart for the rest."""

    def __init__(self, app: AsgiApp, quart: Quart) -> None:
        self.app = app
        self.quart = quart

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Answer the three routes when they may be, else pass the request on untouched."""
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _FreezeOnStartup(send))
            return
        if scope["type"] == "http" and not scope.get("root_path"):
            route = (scope["method"], scope["path"])
            if scope["query_string"]:
                if route[0] == "GET" and await self._unchanged_poll(scope):
                    await self._send(send, 204, HTML, b"", NO_STORE)
                    return
            elif route == ("GET", "/"):
                page = await self._catalog(scope["headers"])
                if page is not None:
                    await self._send(send, 200, HTML, page.encode())
                    return
            elif route == ("POST", "/webhook") and self._takes_webhook(scope["headers"]):
                await self._webhook(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _send(
        self,
        send: ASGISendCallable,
        status: int,
        kind: bytes,
        body: bytes,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        headers = [(b"content-type", kind), *extra]
        if status != 204:  # Quart sends no length with a 204 (it has no body at all)
            headers.append((b"content-length", str(len(body)).encode()))
        for name, value in self.quart.extensions["security_headers"].items():
            headers.append((name.lower().encode(), value.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _catalog(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        extensions = self.quart.extensions
        try:
            count = await _cart_count(extensions["db"], headers)
        except Exception:
            # Quart answers this request again, with its error page and its log line.
            log.debug("catalog fast path declined", exc_info=True)
            return None
        page: str | None = extensions["catalog_page"].cached(count)
        return page

    async def _unchanged_poll(self, scope: Scope) -> bool:
        """True if receipts' own rules answer this poll with an empty 204."""
        path = POLL_PATH.fullmatch(scope["path"])
        query = POLL_QUERY.fullmatch(scope["query_string"])
        if path is None or query is None:
            return False
        targets = [v for n, v in scope["headers"] if n.lower() == b"hx-target"]
        asked = receipts.Asked(
            path[1],
            query[1].decode(),
            query[2].decode(),
            # Any HX-Target naming the old status section: Quart decides, on its first one.
            "order-status" if b"order-status" in targets else None,
        )
        extensions = self.quart.extensions
        try:
            glance = await extensions["db"].order_glance(asked.token)
            # ``due`` only looks: a sync that is due is Quart's to take and to do.
            answer, _ = receipts.decide(asked, glance, extensions["status_sync"].due)
        except Exception:
            # Quart answers this request again, with its error page and its log line.
            log.debug("poll fast path declined", exc_info=True)
            return False
        return answer is receipts.Answer.UNCHANGED

    def _takes_webhook(self, headers: list[tuple[bytes, bytes]]) -> bool:
        # In debug mode Quart's JSON is indented: Quart answers there.
        if self.quart.debug or self.quart.config["MAX_CONTENT_LENGTH"] is None:
            return False
        lengths = [value for name, value in headers if name.lower() == b"content-length"]
        # A declared length past the limit (or unreadable) is Quart's to refuse.
        return not lengths or (
            len(lengths) == 1
            and lengths[0].isdigit()
            and int(lengths[0]) <= self.quart.config["MAX_CONTENT_LENGTH"]
        )

    async def _webhook(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        limit = self.quart.config["MAX_CONTENT_LENGTH"]
        chunks: list[bytes] = []
        size, more = 0, True
        try:
            async with asyncio.timeout(BODY_GRACE):
                while more and size <= limit:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away: nobody to answer
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    more = message.get("more_body", False)
        except TimeoutError:
            pass  # a slow sender: Quart takes over, with its own body timeout and 408
        payload = b"".join(chunks)
        if more or size > limit:
            # Quart answers with what was read handed over again (a 413 past the limit).
            await self.app(scope, _Replay(payload, receive, more=more), send)
            return
        extensions = self.quart.extensions
        try:
            signature = next(
                (v.decode() for n, v in scope["headers"] if n.lower() == b"stripe-signature"), None
            )
            answer, status = await webhooks.receive(
                extensions["payments"],
                extensions["db"],
                payload,
                signature,
                lines_due=webhooks.lines_due(extensions),
            )
        except Exception as error:
            log.warning("webhook fast path failed (%s); Quart answers it", type(error).__name__)
            await self.app(scope, _Replay(payload, receive, more=False), send)
            return
        body = (self.quart.json.dumps(answer, separators=(",", ":")) + "\n").encode()
        await self._send(send, status, b"application/json", body)


def freeze_startup_heap() -> None:
    """Collect once, then exempt every object alive now from later collections.

    The modules, templates, app and connections built at start-up stay for the
    process's life; frozen, a full collection walks only what requests left
    behind. Once per process: a process that starts several apps (the tests)
    keeps its first freeze, so later apps' objects can still be collected.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


class _FreezeOnStartup:
    """A lifespan send that freezes the start-up heap as the app reports itself started."""

    def __init__(self, send: ASGISendCallable) -> None:
        self._send = send

    async def __call__(self, message: ASGISendEvent) -> None:
        if message["type"] == "lifespan.startup.complete":
            freeze_startup_heap()
        await self._send(message)


class _Replay:
    """A receive that hands over the body read so far, then the client's own messages."""

    def __init__(self, body: bytes, receive: ASGIReceiveCallable, *, more: bool) -> None:
        self._body: bytes | None = body
        self._more = more
        self._receive = receive

    async def __call__(self) -> ASGIReceiveEvent:
        if self._body is None:
            return await self._receive()
        body, self._body = self._body, None
        return {"type": "http.request", "body": body, "more_body": self._more}


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
