"""The sandbox app factory: blueprints, error shapes, headers and background tasks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from quart import Quart, Response, render_template, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ..money import format_money
from . import api_catalog, hosted_extras  # noqa: F401 (their routes join api and pages)
from .api import api, start_api_request, stripe_headers
from .backoffice import backoffice
from .errors import StripeApiError, unrecognized_url
from .hosted import pages
from .mail import MailCatcher, mail_pages
from .settings import SandboxSettings
from .state import SandboxState
from .testhelpers import helpers

HERE = Path(__file__).resolve().parent

# No scripts at all; forms may post (and redirect) anywhere, so form-action stays open.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data: https: http:; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def format_time(timestamp: float) -> str:
    """A Unix time as a readable UTC time."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def is_api_path(path: str) -> bool:
    """True for Stripe API paths (``/v1`` and below)."""
    return path == "/v1" or path.startswith("/v1/")


def create_sandbox_app(settings: SandboxSettings | None = None) -> Quart:
    """Build the sandbox: API under /v1, hosted pages, and its own tools under /_sandbox."""
    settings = settings or SandboxSettings()
    app = Quart(
        "storefront.sandbox",
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
        static_url_path="/_sandbox/static",
    )
    state = SandboxState(settings)
    app.extensions["sandbox"] = state
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["when"] = format_time
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(helpers)
    app.register_blueprint(backoffice)
    app.register_blueprint(mail_pages)
    mail = MailCatcher(settings.smtp_port, state.clock)
    app.extensions["sandbox_mail"] = mail

    @app.before_serving
    async def start_background() -> None:
        await state.start()
        await mail.start()

    @app.after_serving
    async def stop_background() -> None:
        await mail.stop()
        await state.stop()

    @app.errorhandler(StripeApiError)
    async def stripe_error(error: StripeApiError) -> tuple[dict[str, object], int]:
        return error.body(), error.status

    @app.errorhandler(NotFound)
    @app.errorhandler(MethodNotAllowed)
    async def no_route(
        error: Exception,
    ) -> Response | tuple[dict[str, object], int] | tuple[str, int]:
        if is_api_path(request.path):
            stripe = unrecognized_url(request.method, request.path)
            return stripe.body(), stripe.status
        return await render_template("missing.html"), 404

    # App-wide rather than on the API blueprint: a route the API lacks is no request
    # of the blueprint's, yet its 404 must carry Request-Id and Stripe-Version too.
    @app.before_request
    async def api_request_id() -> None:
        if is_api_path(request.path):
            start_api_request()

    @app.after_request
    async def api_headers(response: Response) -> Response:
        return stripe_headers(response) if is_api_path(request.path) else response

    @app.after_request
    async def security_headers(response: Response) -> Response:
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = CSP
            response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return app
