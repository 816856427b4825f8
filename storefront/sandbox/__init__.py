"""A local Stripe stand-in: the API subset the shop uses, a hosted payment page, webhooks."""

from __future__ import annotations

import asyncio
import logging

from ..serving import serve_app
from .app import create_sandbox_app
from .settings import SandboxSettings, add_arguments, mask_secret
from .state import SandboxState

__all__ = [
    "SandboxSettings",
    "SandboxState",
    "add_arguments",
    "create_sandbox_app",
    "run_sandbox",
]

logger = logging.getLogger(__name__)


async def run_sandbox(
    settings: SandboxSettings, host: str, port: int, shutdown: asyncio.Event
) -> None:
    """Serve the sandbox on ``host:port`` until ``shutdown`` is set."""
    app = create_sandbox_app(settings)
    logger.info("sandbox listening on http://%s:%d", host, port)
    for line in settings.describe():
        logger.info("sandbox setting %s", line)
    if settings.webhook_url:
        logger.info(
            "default webhook endpoint %s (secret %s)",
            settings.webhook_url,
            mask_secret(settings.webhook_secret),
        )
    await serve_app(app, host, port, shutdown)
