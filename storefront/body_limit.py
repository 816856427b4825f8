"""Request bodies end at MAX_CONTENT_LENGTH, and an early answer reaches the client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
)
from quart import Quart

AsgiApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]

# How much of a body the shop has already answered is read and dropped before the
# connection closes. Closing with unread bytes makes the kernel reset the connection,
# and a client still sending then sees the reset instead of the answer; past these
# bounds the sender gets the reset, so it cannot keep a connection busy for long.
DRAIN_BYTES = 8 * 1024 * 1024
DRAIN_SECONDS = 10.0

DISCONNECT: ASGIReceiveEvent = {"type": "http.disconnect"}


def install(app: Quart) -> None:
    """Wrap ``app``'s ASGI entry so bodies stop at MAX_CONTENT_LENGTH and early answers land.

    Quart 0.22 raises RequestEntityTooLarge as soon as a chunked body passes the limit.
    Quart 0.23 queues every chunk and compares sizes only once the body has ended, so a
    sender that never ends one got no answer until the body timeout, and was buffered
    without bound meanwhile. Ending the body at the first message past the limit makes
    both versions (and the multipart parser) see too many bytes and answer 413.

    Either version answers before the body is all read (a Content-Length past the limit
    is refused at once), and Hypercorn closes the connection right after such an answer.
    So such an answer says ``Connection: close`` and the rest of the body is read and
    dropped before the answer ends (see DRAIN_BYTES), or the client may get a reset.
    """
    app.asgi_app = BodyLimit(  # type: ignore[method-assign]
        app.asgi_app, lambda: app.config["MAX_CONTENT_LENGTH"]
    )


class BodyLimit:
    """ASGI middleware: bodies end past ``limit()``; an answer given early drains the rest."""

    def __init__(self, app: AsgiApp, limit: Callable[[], int | None]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Pass the request on, with a receive and a send that guard its body."""
        limit = self.limit() if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        http1 = scope.get("http_version", "1.1").startswith("1.")
        headers = {name.lower(): value.strip() for name, value in scope["headers"]}
        chunked = b"transfer-encoding" in headers
        length = headers.get(b"content-length", b"")
        declared = int(length) if length.isdigit() and not chunked else None
        if http1 and not chunked and not declared:
            # HTTP/1 frames every body up front: without a length or chunking there is none.
            await self.app(scope, receive, send)
            return
        body = _GuardedBody(receive, send, limit, declared)
        # HTTP/2 ends a stream without closing the connection, so only HTTP/1 needs the drain.
        await self.app(scope, body.receive, body.send if http1 else send)


class _GuardedBody:
    """One request: counts body bytes, cuts the body at the limit, drains after early answers.

    The app's receive and the drain both read the server's receive; a lock lets only one
    of them wait on it at a time, so neither waits for a message the other took.
    """

    def __init__(
        self,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        limit: int,
        declared: int | None,
    ) -> None:
        self._receive = receive
        self._send = send
        self._limit = limit
        self._declared = declared
        self._lock = asyncio.Lock()
        self._seen = 0
        self._cut = False
        # The whole body has arrived, or the client went away: nothing is left to drain.
        self._ended = False
        self._disconnected = False

    async def _next(self) -> ASGIReceiveEvent:
        """Take the server's next message (a disconnect stays the answer from then on)."""
        async with self._lock:
            if self._disconnected:
                return DISCONNECT
            return self._count(await self._receive())

    def _count(self, message: ASGIReceiveEvent) -> ASGIReceiveEvent:
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            at_end = self._declared is not None and self._seen >= self._declared
            self._ended = self._ended or at_end or not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self._disconnected = self._ended = True
        return message

    async def receive(self) -> ASGIReceiveEvent:
        """The app's receive: the body ends at the first message past the limit."""
        while True:
            message = await self._next()
            if message["type"] != "http.request":
                return message
            if self._cut:
                # The app already has its answer (413); drop what the sender keeps sending.
                continue
            if self._seen > self._limit and message.get("more_body", False):
                self._cut = True
                # Hand over this last chunk, so the app sees more than the limit allows.
                return {"type": "http.request", "body": message["body"], "more_body": False}
            return message

    async def send(self, message: ASGISendEvent) -> None:
        """The app's send: an answer given before the body ended closes the connection cleanly."""
        if message["type"] == "http.response.start" and not self._ended:
            headers = list(message.get("headers", []))
            if all(name.lower() != b"connection" for name, _ in headers):
                headers.append((b"connection", b"close"))
            message = {**message, "headers": headers}  # type: ignore[misc]
        elif (
            message["type"] == "http.response.body"
            and not message.get("more_body", False)
            and not self._ended
        ):
            # The whole answer goes out now; only its end waits until the body is read.
            await self._send({**message, "more_body": True})  # type: ignore[misc]
            await self._drain()
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await self._send(message)

    async def _drain(self) -> None:
        """Read and drop the rest of the body, within DRAIN_BYTES and DRAIN_SECONDS."""
        self._cut = True
        stop_at = self._seen + DRAIN_BYTES
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while not self._ended and self._seen <= stop_at:
                    async with self._lock:
                        # The app's receive may have taken the body's end meanwhile.
                        if not self._ended:
                            self._count(await self._receive())
        except TimeoutError:
            pass
