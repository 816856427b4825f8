"""Serve the shop with Granian, the optional production server (the ``granian`` extra).

Hypercorn stays the default (`storefront serve`, `make run`); `storefront serve --server
granian --workers N` runs the same app, with the same settings, in N Granian worker
processes. Each worker runs the ASGI lifespan, so each opens its own database pool and
runs its own reconciler and outbox loop, as several instances of the shop would.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import multiprocessing
import signal
from functools import partial
from typing import TYPE_CHECKING

from storefront.config import Settings

if TYPE_CHECKING:
    from quart import Quart

    from storefront.sandbox import SandboxSettings

MISSING = "--server granian needs the granian extra: pip install 'storefront[granian]'"
# A worker gets this long after SIGTERM to finish its requests and close its lifespan
# (reconciler, outbox, database) before it is killed.
WORKER_KILL_TIMEOUT = 30
# The sandbox process is told to stop after the shop; it needs a second or two.
SANDBOX_STOP_TIMEOUT = 10.0
WORKERS_RANGE = (1, 64)

log = logging.getLogger(__name__)


class GranianMissing(ValueError):
    """The ``granian`` extra is not installed."""


def require_granian() -> None:
    """Fail with one line when Granian is not installed."""
    if importlib.util.find_spec("granian") is None:
        raise GranianMissing(MISSING)


def shop_app(settings: Settings) -> Quart:
    """Build the shop inside a Granian worker (module level, so a spawned one can too)."""
    from storefront import create_app

    return create_app(settings)


def serve_shop(
    settings: Settings,
    host: str,
    port: int,
    *,
    workers: int = 1,
    sandbox: tuple[SandboxSettings, int] | None = None,
) -> None:
    """Serve the shop on ``host:port`` with Granian until SIGINT or SIGTERM.

    With ``sandbox`` (its settings and port), the local Stripe stand-in runs beside it in
    a process of its own and stops after the shop.
    """
    require_granian()
    from granian.constants import Interfaces
    from granian.server import Server

    sandbox_process = _start_sandbox(*sandbox, host) if sandbox else None
    try:
        server = Server(
            # Only named in Granian's log lines: the loader below builds the app.
            "storefront:create_app",
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            workers_kill_timeout=WORKER_KILL_TIMEOUT,
            log_access=False,
        )
        # The settings the command resolved (options, .env, sandbox URLs) reach every
        # worker as they are, instead of each worker reading the environment again.
        server.serve(target_loader=partial(shop_app, settings), wrap_loader=False)
    finally:
        if sandbox_process is not None:
            _stop_sandbox(sandbox_process)


def _start_sandbox(
    settings: SandboxSettings, port: int, host: str
) -> multiprocessing.process.BaseProcess:
    # Forked before Granian starts its workers, so they never inherit the sandbox's socket;
    # this process has no threads yet (its set-up loop has closed), and a fork skips the
    # seconds a spawned interpreter would spend importing the app again.
    process = multiprocessing.get_context("fork").Process(
        target=_run_sandbox, args=(settings, host, port), name="storefront-sandbox"
    )
    process.start()
    return process


def _stop_sandbox(process: multiprocessing.process.BaseProcess) -> None:
    process.terminate()
    process.join(SANDBOX_STOP_TIMEOUT)
    if process.is_alive():
        log.warning("the sandbox did not stop within %.0f s; killing it", SANDBOX_STOP_TIMEOUT)
        process.kill()
        process.join()


def _run_sandbox(settings: SandboxSettings, host: str, port: int) -> None:
    """The sandbox process: serve until SIGTERM (from the shop's process) or SIGINT (Ctrl-C)."""
    from storefront.sandbox import run_sandbox

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        shutdown = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, shutdown.set)
        await run_sandbox(settings, host, port, shutdown)

    asyncio.run(main())
