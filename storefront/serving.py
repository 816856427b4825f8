"""Serve ASGI apps with Hypercorn inside the running event loop."""

from __future__ import annotations

import asyncio
import logging
import socket

from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def hypercorn_config(host: str, port: int, *, access_log: bool = False) -> Config:
    """Build a Hypercorn config bound to ``host:port``."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    # Hand Hypercorn our loggers so each line is written once, by our handler.
    config.accesslog = logging.getLogger("hypercorn.access") if access_log else None
    config.errorlog = logging.getLogger("hypercorn.error")
    # Answer at once on shutdown instead of waiting for keep-alive clients.
    config.graceful_timeout = 1.0
    # Idle keep-alive connections outlive aiohttp's 15 s pool (the SDK's client, the
    # sandbox's webhook sender), so the client lets go first: a server closing one first
    # races the client's next request on it, which then meets a reset. Shutdown still
    # closes idle connections at once.
    config.keep_alive_timeout = 30.0
    return config


async def serve_app(
    app: ASGIFramework, host: str, port: int, shutdown: asyncio.Event, *, access_log: bool = False
) -> None:
    """Serve ``app`` on ``host:port`` until ``shutdown`` is set."""
    config = hypercorn_config(host, port, access_log=access_log)
    await serve(app, config, shutdown_trigger=shutdown.wait)


async def wait_until_listening(host: str, port: int, within: float = 10.0) -> None:
    """Wait until something accepts TCP connections on ``host:port``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            await asyncio.sleep(0.02)
        else:
            writer.close()
            await writer.wait_closed()
            return


class BackgroundServer:
    """An ASGI app served on a free port for as long as the context lasts."""

    def __init__(self, app: ASGIFramework, host: str = "127.0.0.1", port: int | None = None):
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self._shutdown = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._shutdown.clear()
        self._task = asyncio.create_task(serve_app(self.app, self.host, self.port, self._shutdown))
        await wait_until_listening(self.host, self.port)

    async def stop(self) -> None:
        self._shutdown.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def __aenter__(self) -> BackgroundServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
