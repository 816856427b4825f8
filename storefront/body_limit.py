"""Stop reading a request body at MAX_CONTENT_LENGTH, whichever Quart version reads it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    Scope,
)
from quart import Quart

AsgiApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


def install(app: Quart) -> None:
    """Wrap ``app``'s ASGI entry so no HTTP body is read past its MAX_CONTENT_LENGTH.

    Quart 0.22 raises RequestEntityTooLarge as soon as a chunked body passes the limit.
    Quart 0.23 queues every chunk and compares sizes only once the body has ended, so a
    sender that never ends one got no answer until the body timeout, and was buffered
    without bound meanwhile. Ending the body at the first message past the limit makes
    both versions (and the multipart parser) see too many bytes and answer 413.
    """
    app.asgi_app = BodyLimit(  # type: ignore[method-assign]
        app.asgi_app, lambda: app.config["MAX_CONTENT_LENGTH"]
    )


class BodyLimit:
    """ASGI middleware: HTTP request bodies end at the first message past ``limit()``."""

    def __init__(self, app: AsgiApp, limit: Callable[[], int | None]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Pass the request on, with a receive that cuts the body at the limit."""
        limit = self.limit() if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, _CappedReceive(receive, limit), send)


class _CappedReceive:
    """One request's receive: counts body bytes and ends the body once past the limit."""

    def __init__(self, receive: ASGIReceiveCallable, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._seen = 0
        self._cut = False

    async def __call__(self) -> ASGIReceiveEvent:
        while True:
            message = await self._receive()
            if message["type"] != "http.request":
                return message
            if self._cut:
                # The app already has its answer (413); drop what the sender keeps sending.
                continue
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit and message.get("more_body", False):
                self._cut = True
                # Hand over this last chunk, so the app sees more than the limit allows.
                return {"type": "http.request", "body": message["body"], "more_body": False}
            return message
