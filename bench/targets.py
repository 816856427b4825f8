"""The servers under test: the shop, its baselines and the sandbox, each on a free port."""

from __future__ import annotations

import os
from pathlib import Path

from bench.fixtures import WEBHOOK_SECRET
from bench.procs import HOST, Server, free_port, tool

SHOP = "storefront:create_app()"
HELLO = "bench.baseline.hello:app"
FLASK = "bench.baseline.flask_app:create_app()"
# The whole machine on both sides: ours one worker per core, gunicorn's own
# recommendation of 2 x cores + 1 workers for Flask.
CORES = os.cpu_count() or 1
FLASK_WORKERS = 2 * CORES + 1


def sandbox(latency_ms: int, jitter_ms: int = 0) -> Server:
    """The shop's Stripe stand-in with API latency (± jitter); no webhook endpoint."""
    port = free_port()
    argv = [tool("storefront"), "sandbox", "--host", HOST, "--port", str(port)]
    argv += ["--latency-ms", str(latency_ms), "--latency-jitter-ms", str(jitter_ms)]
    argv += ["--webhook-url", ""]
    name = f"sandbox-{latency_ms}ms" + (f"-pm{jitter_ms}" if jitter_ms else "")
    return Server(name, argv, port, {"STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET})


def shop_env(
    database: Path, port: int, api_base: str | None, database_url: str | None = None
) -> dict[str, str]:
    """The shop's environment: sandbox mode, our webhook secret, no background reconciler."""
    extra = {"STOREFRONT_DATABASE_URL": database_url} if database_url else {}
    return extra | {
        "STRIPE_SECRET_KEY": "",
        "STRIPE_API_BASE": api_base or "http://127.0.0.1:9",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STOREFRONT_BASE_URL": f"http://{HOST}:{port}",
        "STOREFRONT_DATABASE": str(database),
        "STOREFRONT_RECONCILE_INTERVAL": "0",
        # The load generator is one address buying as fast as it can, on purpose.
        "STOREFRONT_CHECKOUT_RATE_LIMIT": "0",
    }


def hypercorn(
    name: str,
    app: str,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    worker_class: str | None = None,
    port: int | None = None,
) -> Server:
    """An ASGI app under Hypercorn's CLI, as deployed; a large backlog for 2,000 clients."""
    port = port or free_port()
    argv = [tool("hypercorn"), app, "-w", str(workers), "--bind", f"{HOST}:{port}"]
    argv += ["--backlog", "4096"]
    if worker_class:
        argv += ["-k", worker_class]
    return Server(name, argv, port, env)


def shop(
    name: str,
    database: Path,
    *,
    api_base: str | None = None,
    workers: int = 1,
    worker_class: str | None = None,
    app: str = SHOP,
    database_url: str | None = None,
) -> Server:
    """The shop under Hypercorn with its own database (SQLite, or PostgreSQL by URL)."""
    port = free_port()
    env = shop_env(database, port, api_base, database_url)
    return hypercorn(name, app, workers=workers, env=env, worker_class=worker_class, port=port)


def shop_granian(name: str, database: Path, *, workers: int = 1) -> Server:
    """The unchanged shop under granian (an extra row; Hypercorn stays the default)."""
    port = free_port()
    argv = [tool("granian"), "--interface", "asgi", "--factory", "storefront:create_app"]
    argv += ["--host", HOST, "--port", str(port), "--workers", str(workers), "--no-access-log"]
    argv += ["--backlog", "4096"]
    return Server(name, argv, port, shop_env(database, port, None))


def hello_granian(name: str, *, workers: int = 1) -> Server:
    """The bare ASGI app under granian, for the granian row's own ceiling."""
    port = free_port()
    argv = [tool("granian"), "--interface", "asgi", HELLO, "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers), "--no-access-log"]
    return Server(name, argv, port)


def flask(
    name: str,
    database: Path,
    *,
    api_base: str | None = None,
    workers: int = FLASK_WORKERS,
    threads: int | None = None,
) -> Server:
    """The tutorial's Flask app under gunicorn: sync workers, or gthread with ``threads``."""
    port = free_port()
    argv = [tool("gunicorn"), FLASK, "-w", str(workers), "-b", f"{HOST}:{port}"]
    argv += ["--backlog", "4096", "--timeout", "60"]
    if threads:
        argv += ["-k", "gthread", "--threads", str(threads)]
    return Server(name, argv, port, shop_env(database, port, api_base))
