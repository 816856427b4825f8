"""Pages a person sees: the hosted payment page, authentication, and the sandbox's own pages."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from .cards import (
    AUTHENTICATION_FAILED,
    NAME_MISSING,
    Attempt,
    Outcome,
    check_email,
    digits_only,
    judge_card,
    judge_iban,
    parse_expiry,
)
from .countries import country_choices
from .resources import CheckoutSession, MethodDetails
from .settings import mask_secret
from .state import SandboxState

pages = Blueprint("sandbox_pages", __name__)

PageResult = str | tuple[str, int] | WerkzeugResponse


def sandbox() -> SandboxState:
    """The state of the app serving this request."""
    return current_app.extensions["sandbox"]


def success_redirect(record: CheckoutSession) -> WerkzeugResponse:
    """303 to ``success_url`` with ``{CHECKOUT_SESSION_ID}`` filled in, as Checkout does."""
    url = record.success_url.replace("{CHECKOUT_SESSION_ID}", record.id)
    return redirect(url, 303)


async def closed_page(record: CheckoutSession, status: int = 200) -> tuple[str, int]:
    """The page for a session that takes no more payments."""
    return await render_template("closed.html", session=record), status


async def pay_page(
    record: CheckoutSession,
    *,
    error: str | None = None,
    form: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The payment page, optionally with an error under one of its forms."""
    totals = record.totals()
    return (
        await render_template(
            "pay.html",
            session=record,
            lines=list(zip(record.line_items, totals.lines, strict=True)),
            totals=totals,
            countries=country_choices(record),
            error=error,
            error_form=form,
            values=values or {},
        ),
        status,
    )


def card_details(number: str, values: dict[str, str]) -> MethodDetails:
    """What a charge records about the card the form accepted."""
    number = digits_only(number)
    # The form already passed check_expiry; the fallback only keeps the types total.
    month, year = parse_expiry(values["expiry"]) or (12, 2034)
    return MethodDetails(
        type="card",
        email=values["email"],
        name=values["name"] or None,
        last4=number[-4:],
        brand="mastercard" if number.startswith("5") else "visa",
        exp_month=month,
        exp_year=year,
    )


def iban_details(iban: str, email: str, name: str) -> MethodDetails:
    """What a charge records about the debited account (no full IBAN)."""
    iban = digits_only(iban).upper()
    return MethodDetails(
        type="sepa_debit",
        email=email,
        name=name or None,
        last4=iban[-4:],
        country=iban[:2],
        bank_code=iban[4:12],
    )


def lookup(session_id: str) -> CheckoutSession | None:
    """The session for a hosted page, or None."""
    return sandbox().sessions.get(session_id)


async def not_found() -> tuple[str, int]:
    """The page for an unknown session id."""
    return await render_template("missing.html"), 404


def posting_to_open_session(
    handler: Callable[[CheckoutSession], Awaitable[PageResult]],
) -> Callable[[str], Awaitable[PageResult]]:
    """Hand a payment-page form its open session: 404 if unknown, 409 once it is closed.

    Every POST to a payment page goes through here, so a form sent from a page
    left open in another tab can never change a completed or expired session.
    """

    @functools.wraps(handler)
    async def guarded(session_id: str) -> PageResult:
        record = lookup(session_id)
        if record is None:
            return await not_found()
        if record.status != "open":
            return await closed_page(record, 409)
        return await handler(record)

    return guarded


@pages.get("/c/pay/<session_id>")
async def pay(session_id: str) -> PageResult:
    """Show the payment page of an open session, or say why it is closed."""
    record = lookup(session_id)
    if record is None:
        return await not_found()
    if record.status != "open":
        return await closed_page(record)
    if record.pending_auth is not None:
        return redirect(url_for("sandbox_pages.authenticate", session_id=session_id), 303)
    return await pay_page(record)


def refused(attempt: Attempt) -> int:
    """Declines answer 402 like Stripe's card errors; form mistakes answer 400."""
    return 402 if attempt.decline_code in ("generic_decline", "insufficient_funds") else 400


@pages.post("/c/pay/<session_id>/card")
@posting_to_open_session
async def pay_card(record: CheckoutSession) -> PageResult:
    """Take a card payment with one of Stripe's test numbers."""
    form = await request.form
    values = {
        "email": form.get("email", "").strip(),
        "expiry": form.get("expiry", "").strip(),
        "name": form.get("name", "").strip(),
    }
    email_error = record.missing_inputs() or check_email(values["email"])
    if email_error:
        return await pay_page(record, error=email_error, form="card", values=values, status=400)
    state = sandbox()
    attempt = judge_card(
        form.get("number", ""), values["expiry"], form.get("cvc", ""), state.today()
    )
    if attempt.outcome is Outcome.DECLINE:
        return await pay_page(
            record, error=attempt.message, form="card", values=values, status=refused(attempt)
        )
    if not values["name"]:
        return await pay_page(record, error=NAME_MISSING, form="card", values=values, status=400)
    details = card_details(form.get("number", ""), values)
    if attempt.outcome is Outcome.AUTHENTICATE:
        record.await_authentication(details)
        return redirect(url_for("sandbox_pages.authenticate", session_id=record.id), 303)
    state.complete(record, values["email"], values["name"], "card", details=details)
    return success_redirect(record)


@pages.post("/c/pay/<session_id>/bank")
@posting_to_open_session
async def pay_bank(record: CheckoutSession) -> PageResult:
    """Take a SEPA Direct Debit: complete unpaid now, settle later."""
    if "sepa_debit" not in record.payment_method_types:
        return await pay_page(
            record, error="This session does not accept bank debits.", form="bank", status=400
        )
    form = await request.form
    values = {
        "bank_email": form.get("email", "").strip(),
        "bank_name": form.get("name", "").strip(),
    }
    error = record.missing_inputs() or check_email(values["bank_email"])
    attempt = judge_iban(form.get("iban", ""))
    if error is None and attempt.outcome is Outcome.DECLINE:
        error = attempt.message
    if error is None and not values["bank_name"]:
        error = NAME_MISSING
    if error is not None:
        return await pay_page(record, error=error, form="bank", values=values, status=400)
    sandbox().complete(
        record,
        values["bank_email"],
        values["bank_name"],
        "sepa_debit",
        settles_ok=attempt.outcome is Outcome.SETTLE_LATER_OK,
        details=iban_details(form.get("iban", ""), values["bank_email"], values["bank_name"]),
    )
    return success_redirect(record)


@pages.get("/c/pay/<session_id>/authenticate")
async def authenticate(session_id: str) -> PageResult:
    """The stand-in for the bank's 3D Secure page."""
    record = lookup(session_id)
    if record is None:
        return await not_found()
    if record.status != "open":
        return await closed_page(record)
    if record.pending_auth is None:
        return redirect(url_for("sandbox_pages.pay", session_id=session_id), 303)
    return await render_template("authenticate.html", session=record)


@pages.post("/c/pay/<session_id>/authenticate")
@posting_to_open_session
async def finish_authentication(record: CheckoutSession) -> PageResult:
    """Complete or fail the authentication step."""
    pending = record.pending_auth
    if pending is None:
        return redirect(url_for("sandbox_pages.pay", session_id=record.id), 303)
    form = await request.form
    details = pending.details
    if form.get("outcome") == "complete":
        authenticated = dataclasses.replace(details, authenticated=True)
        sandbox().complete(
            record, details.email, details.name or "", "card", details=authenticated
        )
        return success_redirect(record)
    record.drop_authentication()
    return await pay_page(
        record, error=AUTHENTICATION_FAILED, form="card", values=pending.form_values(), status=402
    )


@pages.get("/")
async def index() -> str:
    """The sandbox's home: what it is, its sessions and endpoints."""
    state = sandbox()
    sessions = list(reversed(state.sessions.values()))[:50]
    return await render_template(
        "index.html",
        sessions=sessions,
        endpoints=endpoints_view(state),
        settings_lines=state.settings.describe(),
        stats=state.stats,
    )


def endpoints_view(state: SandboxState) -> list[dict[str, Any]]:
    """Endpoints as shown on pages: secrets masked."""
    return [
        {
            "id": e.id,
            "url": e.url,
            "events": ", ".join(e.enabled_events),
            "secret": mask_secret(e.secret),
        }
        for e in state.endpoints.values()
    ]


@pages.get("/_sandbox/events")
async def events_page() -> str:
    """Every event, newest first, with its delivery attempts and a resend button."""
    state = sandbox()
    rows = [
        {
            "event": event,
            "deliveries": state.deliverer.deliveries.get(event["id"], []),
            "success": state.deliverer.delivery_success(event["id"]),
        }
        for event in reversed(state.events.values())
    ]
    return await render_template(
        "events.html", rows=rows, endpoints=endpoints_view(state), stats=state.stats
    )


@pages.post("/_sandbox/events/<event_id>/resend")
async def resend_event(event_id: str) -> PageResult:
    """Deliver one event again right now, then show the list."""
    state = sandbox()
    if event_id not in state.events:
        return await not_found()
    await state.deliverer.resend(event_id, list(state.endpoints.values()))
    return redirect(url_for("sandbox_pages.events_page") + f"#{event_id}", 303)


@pages.get("/_sandbox/stats")
async def stats() -> dict[str, int]:
    """Delivery and API counters as JSON."""
    return dict(sandbox().stats)


@pages.post("/_sandbox/sessions/<session_id>/age")
async def age_session(session_id: str) -> PageResult:
    """Move a session ``seconds`` into the past and expire it if that makes it due."""
    state = sandbox()
    record = state.sessions.get(session_id)
    if record is None:
        return {"error": f"no such session {session_id}"}, 404  # type: ignore[return-value]
    try:
        seconds = int(request.args.get("seconds", "0"))
    except ValueError:
        return {"error": "seconds must be an integer"}, 400  # type: ignore[return-value]
    state.age(record, seconds)
    state.expire_due()
    return {
        "id": record.id,
        "status": record.status,
        "expires_at": record.expires_at,
    }  # type: ignore[return-value]
