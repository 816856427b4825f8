"""The `storefront` command: set up the database, add products, run the shop."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from dotenv import load_dotenv

from storefront.config import (
    PORT_RANGE,
    RECONCILE_AFTER_RANGE,
    ConfigError,
    Settings,
    parse_seconds,
    parse_whole,
)
from storefront.granian_server import WORKERS_RANGE
from storefront.resources import SAMPLE_PRODUCTS, env_file

if TYPE_CHECKING:
    from storefront.sandbox import SandboxSettings

log = logging.getLogger("storefront")

TEST_CARD = "4242 4242 4242 4242 (any future expiry, any CVC)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    # Settings come from the environment; a .env (the checkout's, or the current folder's
    # for an installed wheel) fills gaps.
    load_dotenv(env_file(), override=False)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The SDK logs every request at INFO; our own lines already say what matters.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(os.environ)
        if getattr(args, "database", None):
            settings = dataclasses.replace(settings, database=Path(args.database))
        outcome = args.run(args, settings)
        # Most commands are coroutines; `serve --server granian` runs its own processes.
        return int((asyncio.run(outcome) if inspect.iscoroutine(outcome) else outcome) or 0)
    except ConfigError as error:
        print(f"storefront: configuration error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"storefront: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line naming the option (no usage block)."""

    def error(self, message: str) -> NoReturn:
        """Print one line and exit with status 2."""
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _checked(name: str, parse: Callable[[str, str], object]) -> Callable[[str], object]:
    """An argparse type that validates like the settings do, naming the option."""

    def convert(raw: str) -> object:
        try:
            return parse(name, raw)
        except ConfigError as error:
            # argparse already says "argument --port: " in front.
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{name} ")) from None

    convert.__name__ = name  # argparse names the type in some messages
    return convert


def _port(name: str) -> Callable[[str], object]:
    return _checked(name, lambda n, raw: parse_whole(n, raw, *PORT_RANGE))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="storefront", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run: object, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--database", help="SQLite file (default: $STOREFRONT_DATABASE)")
        sub.set_defaults(run=run)
        return sub

    command("init-db", _init_db, "Create the database and its tables (safe to repeat).")
    command("migrate", _migrate, "Bring an existing database's schema up to this version.")

    add = command("add-product", _add_product, "Add a product, or update it by slug.")
    add.add_argument("--slug", required=True, help="URL name: lowercase letters, digits, -")
    add.add_argument("--name", required=True)
    add.add_argument("--price", required=True, help='price in major units, e.g. "19.99"')
    add.add_argument("--currency", required=True, help="ISO code, e.g. eur")
    add.add_argument("--description", default="")
    add.add_argument("--image", help="path under static/ or an https URL")
    add.add_argument("--inactive", action="store_true", help="add it but keep it off sale")
    add.add_argument("--stock", help="units on hand, a whole number (default: unlimited)")
    add.add_argument(
        "--kind", choices=("physical", "digital"), default="digital", help="physical goods ship"
    )

    user = command("add-user", _add_user, "Create a back-office account, or set its password.")
    user.add_argument("--email", required=True)
    user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (default: ask twice)",
    )

    imp = command("import-products", _import_products, "Add or update products from TOML or CSV.")
    imp.add_argument("file", type=Path, help="[[product]] tables (.toml) or rows (.csv)")
    command(
        "sync-stripe",
        _sync_stripe,
        "Add or update products from the Stripe account's active Products and Prices.",
    )

    serve = command(
        "serve", _serve, "Run the shop; without STRIPE_SECRET_KEY, the sandbox runs beside it."
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port("--port"), default=5000)
    serve.add_argument("--sandbox-port", type=_port("--sandbox-port"), default=12111)
    serve.add_argument(
        "--server",
        choices=("hypercorn", "granian"),
        default="hypercorn",
        help="granian needs the granian extra (default: hypercorn)",
    )
    serve.add_argument(
        "--workers",
        type=_checked("--workers", lambda n, raw: parse_whole(n, raw, *WORKERS_RANGE)),
        default=1,
        help="shop processes, 1 to 64; more than 1 needs --server granian (default: 1)",
    )
    _add_sandbox_arguments(serve)

    sandbox = command("sandbox", _sandbox, "Run only the local Stripe sandbox.")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=_port("--port"), default=12111)
    _add_sandbox_arguments(sandbox)

    rec = command("reconcile", _reconcile, "Ask Stripe about stale open orders and apply it.")
    rec.add_argument(
        "--older-than",
        type=_checked(
            "--older-than", lambda n, raw: parse_seconds(n, raw, *RECONCILE_AFTER_RANGE)
        ),
        default=None,
        help="seconds untouched, 0 to 30 days (default: $STOREFRONT_RECONCILE_AFTER)",
    )
    return parser


def _add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    from storefront.sandbox import SandboxSettings

    SandboxSettings.add_arguments(parser)


async def _init_db(args: argparse.Namespace, settings: Settings) -> None:
    from storefront.store import make_store, where

    db = make_store(settings, create=True)
    await db.open()
    await db.close()
    print(f"database ready: {where(settings)}")


async def _migrate(args: argparse.Namespace, settings: Settings) -> None:
    from storefront.migrations import HEAD
    from storefront.store import migrate, where

    before = await migrate(settings)
    if before == HEAD:
        print(f"database schema already at {HEAD}: {where(settings)}")
    else:
        print(f"database schema migrated from {before} to {HEAD}: {where(settings)}")


async def _save(settings: Settings, products: list) -> int:  # type: ignore[type-arg]
    from storefront.store import make_store

    db = make_store(settings, create=True)
    await db.open()
    try:
        return await db.save_products(products)
    finally:
        await db.close()


async def _add_product(args: argparse.Namespace, settings: Settings) -> None:
    from storefront.catalog import NewProduct

    product = NewProduct.parse(
        {
            "slug": args.slug,
            "name": args.name,
            "price": args.price,
            "currency": args.currency,
            "description": args.description,
            "image": args.image,
            "active": not args.inactive,
            "stock": args.stock,
            "kind": args.kind,
        }
    )
    await _save(settings, [product])
    print(f"saved product {product.slug}")


MIN_PASSWORD = 12


async def _add_user(args: argparse.Namespace, settings: Settings) -> None:
    import getpass

    from storefront.admin.auth import Passwords
    from storefront.store import make_store

    email = args.email.strip().lower()
    if "@" not in email or len(email) > 200 or any(c.isspace() for c in email):
        raise ValueError("--email must be an email address")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise ValueError("the two passwords differ")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
    db = make_store(settings)
    await db.open()
    try:
        await db.add_staff(email, Passwords().hash(password))
    finally:
        await db.close()
    print(f"saved back-office account {email}")


async def _import_products(args: argparse.Namespace, settings: Settings) -> None:
    from storefront.catalog import read_products_file

    count = await _save(settings, read_products_file(args.file))
    print(f"saved {count} products from {args.file}")


async def _sync_stripe(args: argparse.Namespace, settings: Settings) -> None:
    from storefront.payments import StripePayments

    payments = StripePayments.from_settings(settings)
    await payments.open()
    try:
        products, skipped = await payments.active_catalog()
    finally:
        await payments.close()
    count = await _save(settings, products) if products else 0
    print(f"saved {count} products from Stripe")
    for reason in skipped:
        print(f"skipped {reason}")


def _serve(args: argparse.Namespace, settings: Settings) -> Coroutine[Any, Any, None] | None:
    if args.server == "granian":
        from storefront.granian_server import require_granian, serve_shop

        # Before any database work: a missing extra is the whole answer.
        require_granian()
        settings, sandbox = asyncio.run(_serve_setup(args, settings))
        _print_banner(settings)
        serve_shop(
            settings,
            args.host,
            args.port,
            workers=args.workers,
            beside=partial(_sandbox_process, sandbox, args.host, args.sandbox_port)
            if sandbox
            else None,
        )
        return None
    if args.workers != 1:
        raise ValueError("--workers above 1 needs --server granian")
    return _serve_hypercorn(args, settings)


async def _serve_setup(
    args: argparse.Namespace, settings: Settings
) -> tuple[Settings, SandboxSettings | None]:
    """Check the database and resolve the URLs; the sandbox's settings in sandbox mode."""
    from storefront.catalog import read_products_file
    from storefront.db import require_database
    from storefront.store import require_schema

    if not settings.database_url and not settings.database.exists():
        if not settings.sandbox:
            # A real shop's database is made on purpose: a fresh one here would
            # hide a wrong path or a lost disk behind an empty order history.
            require_database(settings.database)
        # The sandbox demo (`make run`) starts with a shop to look at.
        await _save(settings, read_products_file(SAMPLE_PRODUCTS))
        print(f"created {settings.database} with the sample products")
    # One line before anything listens: a schema of another version needs `migrate`.
    await require_schema(settings)
    if "STOREFRONT_BASE_URL" not in os.environ:
        settings = dataclasses.replace(settings, base_url=f"http://{args.host}:{args.port}")
    if not settings.sandbox:
        return settings, None
    from storefront.sandbox import SandboxSettings

    sandbox_url = f"http://{args.host}:{args.sandbox_port}"
    settings = dataclasses.replace(settings, api_base=sandbox_url, checkout_origin=sandbox_url)
    sandbox_settings = SandboxSettings.from_args(
        args,
        SandboxSettings(
            public_url=sandbox_url,
            webhook_url=f"{settings.base_url}/webhook",
            webhook_secret=settings.webhook_secret,
        ),
    )
    return settings, sandbox_settings


async def _serve_hypercorn(args: argparse.Namespace, settings: Settings) -> None:
    from storefront import create_app
    from storefront.serving import serve_app

    settings, sandbox_settings = await _serve_setup(args, settings)
    shutdown = asyncio.Event()
    _stop_on_signals(shutdown)
    servers = []
    if sandbox_settings is not None:
        from storefront.sandbox import create_sandbox_app

        servers.append(
            serve_app(create_sandbox_app(sandbox_settings), args.host, args.sandbox_port, shutdown)
        )
    servers.append(serve_app(create_app(settings), args.host, args.port, shutdown))
    _print_banner(settings)
    await asyncio.gather(*servers)


def _print_banner(settings: Settings) -> None:
    print(f"\n  Shop:     {settings.base_url}")
    if settings.sandbox:
        print(f"  Sandbox:  {settings.api_base}  (events: {settings.api_base}/_sandbox/events)")
        print(f"  Test card: {TEST_CARD}")
    else:
        print("  Payments: Stripe")
    print("  Stop with Ctrl-C\n", flush=True)


def _sandbox_process(settings: SandboxSettings, host: str, port: int) -> None:
    """The sandbox beside a Granian shop: serve until SIGTERM (after the shop) or SIGINT."""
    from storefront.sandbox import run_sandbox

    async def run() -> None:
        shutdown = asyncio.Event()
        _stop_on_signals(shutdown)
        await run_sandbox(settings, host, port, shutdown)

    asyncio.run(run())


async def _sandbox(args: argparse.Namespace, settings: Settings) -> None:
    from storefront.sandbox import SandboxSettings, run_sandbox

    url = f"http://{args.host}:{args.port}"
    sandbox_settings = SandboxSettings.from_args(
        args, SandboxSettings.from_env({**os.environ, "SANDBOX_PUBLIC_URL": url})
    )
    shutdown = asyncio.Event()
    _stop_on_signals(shutdown)
    await run_sandbox(sandbox_settings, args.host, args.port, shutdown)


async def _reconcile(args: argparse.Namespace, settings: Settings) -> None:
    from storefront.fulfilment import reconcile
    from storefront.line_items import record_due
    from storefront.payments import StripePayments
    from storefront.store import make_store

    # Never create it: an empty database here would let `serve` start on it later.
    db = make_store(settings)
    payments = StripePayments.from_settings(settings)
    await db.open()
    await payments.open()
    try:
        older_than = settings.reconcile_after if args.older_than is None else args.older_than
        report = await reconcile(db, payments, older_than=older_than)
        # Paid orders still missing Stripe's line items (the running shop sweeps them too).
        lines = await record_due(db, payments)
        carts = await db.delete_stale_carts(settings.cart_max_age)
    finally:
        await payments.close()
        await db.close()
    print(
        f"checked {report.checked} open orders: {report.changed} changed, "
        f"{report.expired} expired, {report.aborted} aborted"
    )
    if lines.recorded or lines.failed or lines.flagged:
        print(
            f"line items: {lines.recorded} orders recorded, {lines.flagged} flagged, "
            f"{lines.failed} not fetched (tried again later)"
        )
    if carts:
        print(f"deleted {carts} carts untouched for {settings.cart_max_age} s")


def _stop_on_signals(shutdown: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown.set)
