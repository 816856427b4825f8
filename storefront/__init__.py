"""Storefront: a small shop selling one-time purchases through Stripe Checkout."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
from collections.abc import Mapping

from quart import Quart, Response, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from storefront.config import Settings
from storefront.db import DatabaseGone
from storefront.errors import ShopError
from storefront.money import format_money, format_timestamp
from storefront.orders import OrderStatus
from storefront.payments import PaymentGateway, StripePayments
from storefront.ratelimit import CheckoutLimiter
from storefront.resources import STATIC, TEMPLATES
from storefront.store import Store, make_store

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, *, payments: PaymentGateway | None = None
) -> Quart:
    """Build the shop: settings, database lifecycle, payments, blueprints."""
    settings = settings or Settings.from_env(os.environ)
    app = Quart(
        __name__,
        template_folder=str(TEMPLATES),
        static_folder=str(STATIC),
    )
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SETTINGS=settings,
    )
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["when"] = format_timestamp
    app.jinja_env.globals["sandbox_mode"] = settings.sandbox
    app.jinja_env.globals["shop_name"] = settings.shop_name
    # Templates name statuses through the enum, never as strings of their own.
    app.jinja_env.globals["OrderStatus"] = OrderStatus

    # Never create the database here: a missing file is a wrong path or a lost
    # disk, and a fresh empty database would quietly hide every order.
    db = make_store(settings)
    gateway = payments or StripePayments.from_settings(settings)
    app.extensions["db"] = db
    app.extensions["payments"] = gateway

    from storefront import (
        body_limit,
        cart,
        catalog,
        checkout,
        fastpath,
        receipts,
        security,
        static_files,
        stock_live,
        webhooks,
    )
    from storefront.admin import auth as admin_auth
    from storefront.admin import views as admin_views

    for module in (catalog, checkout, cart, receipts, webhooks, admin_views, stock_live):
        app.register_blueprint(module.bp)
    app.extensions["admin_auth"] = admin_auth.Auth(
        admin_auth.Passwords(),
        admin_auth.LoginThrottle(),
        secure=settings.base_url.startswith("https://"),
    )
    _drop_sync_context_processors(app)
    app.extensions["status_sync"] = receipts.StatusSyncLimiter(settings.status_sync_after)
    app.extensions["checkout_limiter"] = CheckoutLimiter(
        settings.checkout_rate_limit, proxy_hops=settings.proxy_hops
    )
    app.extensions["catalog_page"] = catalog.CatalogPage(max_age=1.0)
    _register_health(app, db)
    security.install(app, settings.base_url, settings.checkout_origin)
    static_files.install(app, STATIC)
    body_limit.install(app)
    fastpath.install(app)
    _register_error_handlers(app)

    @app.before_serving
    async def _open() -> None:
        await db.open()
        if isinstance(gateway, StripePayments):
            await gateway.open()
        if settings.reconcile_interval > 0:
            app.extensions["reconciler"] = asyncio.create_task(
                _reconcile_forever(db, gateway, settings)
            )
        # Stripe's line items for paid orders: fetched here, never by the webhook.
        from storefront.line_items import LineItemsTask

        lines = app.extensions["line_items"] = LineItemsTask(
            db, gateway, interval=settings.line_items_interval
        )
        app.extensions["line_items_task"] = asyncio.create_task(lines.run_forever())
        if settings.outbox_interval > 0:
            from storefront.outbox import drain_forever

            app.extensions["outbox"] = asyncio.create_task(
                drain_forever(db, settings.mail, settings.base_url, settings.outbox_interval)
            )
        log.info(
            "shop ready at %s (%s)",
            settings.base_url,
            "sandbox" if settings.sandbox else "Stripe",
        )

    @app.after_serving
    async def _close() -> None:
        app.extensions.pop("line_items", None)
        for name in ("reconciler", "outbox", "line_items_task"):
            task = app.extensions.pop(name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if isinstance(gateway, StripePayments):
            await gateway.close()
        await db.close()

    return app


def _drop_sync_context_processors(app: Quart) -> None:
    """Remove the sync default context processor each Quart blueprint inherits.

    Quart's blueprints come from Flask's scaffold, which gives every blueprint
    Flask's synchronous default processor; Quart runs sync processors in a
    thread, so every template rendered in a blueprint paid a thread round trip
    (seen in profiles of the status poll). The app's own async default
    processor already supplies the same ``g``, ``request`` and ``session``.
    """
    for name, processors in app.template_context_processors.items():
        if name is not None:
            processors[:] = [p for p in processors if inspect.iscoroutinefunction(p)]


async def _reconcile_forever(db: Store, payments: PaymentGateway, settings: Settings) -> None:
    """Periodically converge orders whose webhooks never came."""
    from storefront.fulfilment import reconcile

    while True:
        await asyncio.sleep(settings.reconcile_interval)
        try:
            # One instance at a time (PostgreSQL advisory lock; SQLite has one process).
            async with db.exclusive() as mine:
                if not mine:
                    continue
                report = await reconcile(db, payments, older_than=settings.reconcile_after)
        except Exception:
            log.exception("reconciliation pass failed; will try again")
            continue
        if report.checked:
            log.info("reconciled: %s", report)
        try:
            if deleted := await db.delete_stale_carts(settings.cart_max_age):
                log.info("deleted %s abandoned carts", deleted)
        except Exception:
            log.exception("cart clean-up failed; will try again")


def _register_health(app: Quart, db: Store) -> None:
    @app.get("/healthz")
    async def healthz() -> Response:
        """For the proxy: 200 when the database answers at the current schema, else 503."""
        problem = await db.health()
        if problem is not None:
            log.warning("health check failed: %s", problem)
            return Response(
                json.dumps({"ok": False, "reason": problem}),
                status=503,
                content_type="application/json",
                headers={"Cache-Control": "no-store"},
            )
        return Response(
            json.dumps({"ok": True}),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )


def _register_error_handlers(app: Quart) -> None:
    async def render_error(status: int, title: str, message: str) -> Response:
        context: Mapping[str, object] = {"status": status, "title": title, "message": message}
        if request.headers.get("HX-Request") == "true":
            body = await render_template("partials/error.html", **context)
        else:
            body = await render_template("error.html", **context)
        return Response(body, status=status, content_type="text/html; charset=utf-8")

    @app.errorhandler(ShopError)
    async def _shop_error(error: ShopError) -> Response:
        response = await render_error(error.status_code, error.title, error.message)
        response.headers.update(error.headers())
        return response

    @app.errorhandler(DatabaseGone)
    async def _database_gone(error: DatabaseGone) -> Response:
        log.critical("%s (refused %s %s)", error, request.method, request.path)
        return await render_error(
            503, "Temporarily unavailable", "Sorry, we cannot take orders right now."
        )

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        titles = {
            404: ("Not found", "We could not find that page."),
            405: ("Not allowed", "That page cannot be used this way."),
            413: ("Too large", "That request was too large."),
        }
        title, message = titles.get(status, (error.name, "Please try again."))
        response = await render_error(status, title, message)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return await render_error(
            500, "Something went wrong", "Sorry, something went wrong on our side."
        )
