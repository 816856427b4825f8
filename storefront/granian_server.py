"""Serve the shop with Granian, the optional production server (the ``granian`` extra).

Hypercorn stays the default (`storefront serve`, `make run`); `storefront serve --server
granian --workers N` runs the same app, with the same settings, in N Granian worker
processes. Each worker runs the ASGI lifespan, so each opens its own database pool and
runs its own reconciler and outbox loop, as several instances of the shop would.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from storefront.config import Settings

if TYPE_CHECKING:
    from quart import Quart

MISSING = "--server granian needs the granian extra: pip install 'storefront[granian]'"
# A worker gets this long after SIGTERM to finish its requests and close its lifespan
# (reconciler, outbox, database) before it is killed.
WORKER_KILL_TIMEOUT = 30
# The process beside the shop (the sandbox) is told to stop after it; a second or two.
BESIDE_STOP_TIMEOUT = 10.0
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
    beside: Callable[[], None] | None = None,
) -> None:
    """Serve the shop on ``host:port`` with Granian until SIGINT or SIGTERM.

    ``beside`` (the CLI's sandbox) runs in a process of its own, SIGTERMed after the shop.
    """
    require_granian()
    from granian.constants import Interfaces
    from granian.server import Server

    beside_process = _start_beside(beside) if beside else None
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
        if beside_process is not None:
            _stop_beside(beside_process)


def _start_beside(target: Callable[[], None]) -> multiprocessing.process.BaseProcess:
    # Forked before Granian starts its workers, so they never inherit its socket; this
    # process has no threads yet (its set-up loop has closed), and a fork skips the
    # seconds a spawned interpreter would spend importing the app again.
    process = multiprocessing.get_context("fork").Process(target=target, name="storefront-beside")
    process.start()
    return process


def _stop_beside(process: multiprocessing.process.BaseProcess) -> None:
    process.terminate()
    process.join(BESIDE_STOP_TIMEOUT)
    if process.is_alive():
        log.warning("the sandbox did not stop within %.0f s; killing it", BESIDE_STOP_TIMEOUT)
        process.kill()
        process.join()
