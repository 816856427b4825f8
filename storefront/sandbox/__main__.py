"""``python -m storefront.sandbox``: run the sandbox alone."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from . import run_sandbox
from .settings import SandboxSettings, add_arguments

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 12111


def build_parser() -> argparse.ArgumentParser:
    """The command line: host, port and every sandbox knob."""
    parser = argparse.ArgumentParser(
        prog="python -m storefront.sandbox",
        description="Run the local Stripe stand-in (API, hosted payment page, webhooks).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    add_arguments(parser)
    return parser


def settings_from(ns: argparse.Namespace, environ: dict[str, str]) -> SandboxSettings:
    """Environment first, then flags; the public URL follows host and port by default."""
    environ = dict(environ)
    environ.setdefault("SANDBOX_PUBLIC_URL", f"http://{ns.host}:{ns.port}")
    return SandboxSettings.from_args(ns, SandboxSettings.from_env(environ))


def secret_was_generated(ns: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    """True when neither a flag nor the environment chose the webhook secret."""
    return not (
        ns.webhook_secret
        or environ.get("SANDBOX_WEBHOOK_SECRET")
        or environ.get("STRIPE_WEBHOOK_SECRET")
    )


async def _serve(settings: SandboxSettings, host: str, port: int) -> None:
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, shutdown.set)
    await run_sandbox(settings, host, port, shutdown)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, print the settings, serve until Ctrl-C."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        settings = settings_from(ns, dict(os.environ))
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if secret_was_generated(ns, os.environ) and settings.webhook_url:
        # A shop started separately needs this run's secret to verify signatures; it is a
        # throwaway test secret, shown once on stdout and never in the log.
        print(
            f"webhook secret generated for this run: {settings.webhook_secret}\n"
            "(set STRIPE_WEBHOOK_SECRET to choose a stable one)",
            flush=True,
        )
    asyncio.run(_serve(settings, ns.host, ns.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
