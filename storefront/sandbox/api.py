"""The ``/v1`` API blueprint: the part of Stripe's HTTP API the shop uses."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from quart import Blueprint, Response, current_app, g, request

from .checkout import build_session, check_known, check_metadata, public_line_items
from .errors import StripeApiError, api_error, invalid, missing_param, no_such
from .forms import parse_body
from .idempotency import begin_execution, idempotent
from .listing import expansions, paginate, parse_bool, type_matches
from .objects import new_id
from .resources import CheckoutSession
from .state import SandboxState
from .versions import echoed_version, resolve_version

api = Blueprint("sandbox_api", __name__, url_prefix="/v1")

NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def sandbox() -> SandboxState:
    """The state of the app serving this request."""
    return current_app.extensions["sandbox"]


def api_key_from_headers() -> str:
    """The secret key from Bearer or Basic auth; 401 unless it is a test key."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = credentials.strip()
    elif scheme.lower() == "basic":
        # curl -u sk_test_...: sends the key as the Basic user name.
        try:
            key = base64.b64decode(credentials).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            key = ""
    if not key:
        raise StripeApiError(401, NO_KEY)
    if not key.startswith("sk_test_") or len(key) < 12:
        masked = key[:8] + "*" * 4 + key[-4:] if len(key) > 12 else "****"
        raise StripeApiError(
            401,
            f"Invalid API Key provided: {masked}. The sandbox accepts test secret keys "
            "(sk_test_...) only.",
        )
    return key


def start_api_request() -> None:
    """Give every ``/v1`` request its id first, so that even a 404 for a route carries one."""
    g.request_id = new_id("req_", 14)


@api.before_request
async def authenticate_and_disturb() -> None:
    """Check the key and version, parse parameters, apply the latency and failure knobs."""
    state = sandbox()
    state.stats["api_requests"] += 1
    g.api_key = api_key_from_headers()
    settings = state.settings
    g.api_version = resolve_version(
        request.headers.get("Stripe-Version"),
        settings.api_version,
        settings.require_api_version,
    )
    if request.method == "POST":
        raw = (await request.get_data(as_text=True)) or ""
    else:
        raw = request.query_string.decode()
    g.params = parse_body(raw)
    if settings.latency_ms:
        jitter = settings.latency_jitter_ms
        spread = state.rng.uniform(-jitter, jitter) if jitter else 0.0
        await asyncio.sleep((settings.latency_ms + spread) / 1000)
    if settings.failure_rate and state.rng.random() < settings.failure_rate:
        state.stats["api_failures_injected"] += 1
        raise api_error()


def stripe_headers(response: Response) -> Response:
    """Headers every Stripe API answer carries, errors and 404s included."""
    response.headers["Request-Id"] = g.get("request_id") or new_id("req_", 14)
    response.headers["Stripe-Version"] = g.get("api_version") or echoed_version(
        request.headers.get("Stripe-Version"), sandbox().settings.api_version
    )
    if "Idempotency-Key" in request.headers:
        response.headers["Idempotency-Key"] = request.headers["Idempotency-Key"]
    return response


def request_ref() -> tuple[str, str | None]:
    """The ``request`` part of events this API call causes."""
    return g.request_id, g.get("idempotency_key")


def render_session(record: CheckoutSession, wanted: set[str]) -> dict[str, Any]:
    """A session object with the requested expansions."""
    return record.to_stripe(wanted)


SESSION_EXPANDABLE = {
    "line_items",
    "line_items.data.discounts",
    "line_items.data.taxes",
    "payment_intent",
    "total_details.breakdown",
}


@api.post("/checkout/sessions")
@idempotent
async def create_session() -> dict[str, Any]:
    """Create an open Checkout Session."""
    state = sandbox()
    wanted = expansions(g.params, SESSION_EXPANDABLE)
    record = build_session(g.params, state.now(), state.settings.public_base, state.catalog)
    begin_execution()
    state.add_session(record)
    return render_session(record, wanted)


@api.get("/checkout/sessions")
async def list_sessions() -> dict[str, Any]:
    """List sessions newest first, optionally for one payment intent."""
    params = g.params
    check_known(
        params, {"limit", "starting_after", "ending_before", "payment_intent", "status", "expand"}
    )
    wanted = expansions(params, SESSION_EXPANDABLE, "data.")
    records = list(reversed(sandbox().sessions.values()))
    if params.get("payment_intent"):
        records = [r for r in records if r.payment_intent_id == params["payment_intent"]]
    if params.get("status"):
        records = [r for r in records if r.status == params["status"]]
    rendered = [render_session(r, wanted) for r in records]
    return paginate(rendered, params, "/v1/checkout/sessions", "checkout.session")


@api.get("/checkout/sessions/<session_id>")
async def retrieve_session(session_id: str) -> dict[str, Any]:
    """Retrieve one session."""
    check_known(g.params, {"expand"})
    wanted = expansions(g.params, SESSION_EXPANDABLE)
    return render_session(sandbox().session(session_id), wanted)


@api.post("/checkout/sessions/<session_id>/expire")
@idempotent
async def expire_session(session_id: str) -> dict[str, Any]:
    """Expire an open session now."""
    check_known(g.params, {"expand"})
    wanted = expansions(g.params, SESSION_EXPANDABLE)
    begin_execution()
    state = sandbox()
    record = state.session(session_id)
    state.expire(record, request_ref())
    return render_session(record, wanted)


@api.get("/checkout/sessions/<session_id>/line_items")
async def session_line_items(session_id: str) -> dict[str, Any]:
    """The line items of one session, as a list."""
    check_known(g.params, {"limit", "starting_after", "ending_before", "expand"})
    wanted = expansions(g.params, {"discounts", "taxes"}, "data.")
    record = sandbox().session(session_id)
    url = f"/v1/checkout/sessions/{session_id}/line_items"
    items = public_line_items(record, url, frozenset(wanted))["data"]
    return paginate(items, g.params, url, "item")


@api.get("/events/<event_id>")
async def retrieve_event(event_id: str) -> dict[str, Any]:
    """Retrieve one event."""
    check_known(g.params, {"expand"})
    event = sandbox().events.get(event_id)
    if event is None:
        raise no_such("event", event_id)
    return event


@api.get("/events")
async def list_events() -> dict[str, Any]:
    """List events newest first, filtered by type and delivery success."""
    params = g.params
    check_known(
        params,
        {
            "type",
            "types",
            "delivery_success",
            "limit",
            "starting_after",
            "ending_before",
            "expand",
        },
    )
    state = sandbox()
    events = list(reversed(state.events.values()))
    if params.get("type"):
        events = [e for e in events if type_matches(params["type"], e["type"])]
    if params.get("types"):
        types = params["types"] if isinstance(params["types"], list) else [params["types"]]
        events = [e for e in events if any(type_matches(t, e["type"]) for t in types)]
    if "delivery_success" in params:
        wanted = parse_bool(params["delivery_success"], "delivery_success")
        events = [e for e in events if state.deliverer.delivery_success(e["id"]) is wanted]
    return paginate(events, params, "/v1/events", "event")


@api.post("/refunds")
@idempotent
async def create_refund() -> dict[str, Any]:
    """Refund a paid session's payment intent, in full or in part."""
    params = g.params
    check_known(params, {"payment_intent", "amount", "metadata", "reason", "expand"})
    if not params.get("payment_intent"):
        raise missing_param("payment_intent")
    amount = None
    if "amount" in params:
        raw = params["amount"]
        if not isinstance(raw, str) or not raw.isdigit() or int(raw) < 1:
            raise invalid(f"Invalid positive integer: {raw}", "amount")
        amount = int(raw)
    reason = params.get("reason") or None
    if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
        raise invalid(
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
            "reason",
        )
    metadata = check_metadata(params.get("metadata", {}), "metadata")
    begin_execution()
    state = sandbox()
    record = state.session_by_payment_intent(params["payment_intent"])
    return state.refund(record, amount, metadata, reason, request_ref()).to_stripe()


@api.get("/refunds/<refund_id>")
async def retrieve_refund(refund_id: str) -> dict[str, Any]:
    """Retrieve one refund."""
    check_known(g.params, {"expand"})
    for refund in sandbox().refunds():
        if refund.id == refund_id:
            return refund.to_stripe()
    raise no_such("refund", refund_id)


@api.get("/refunds")
async def list_refunds() -> dict[str, Any]:
    """List refunds newest first, optionally of one charge or payment intent."""
    params = g.params
    check_known(
        params, {"charge", "payment_intent", "limit", "starting_after", "ending_before", "expand"}
    )
    refunds = sandbox().refunds()
    if params.get("charge"):
        refunds = [r for r in refunds if r.charge_id == params["charge"]]
    if params.get("payment_intent"):
        refunds = [r for r in refunds if r.payment_intent_id == params["payment_intent"]]
    return paginate([r.to_stripe() for r in refunds], params, "/v1/refunds", "refund")


@api.post("/webhook_endpoints")
@idempotent
async def create_webhook_endpoint() -> dict[str, Any]:
    """Register an endpoint; the answer is the only time its secret is shown."""
    params = g.params
    check_known(params, {"url", "enabled_events", "description", "metadata", "api_version"})
    if not params.get("url"):
        raise missing_param("url")
    if "enabled_events" not in params:
        raise missing_param("enabled_events")
    url = params["url"]
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise invalid("Invalid URL: must be an http(s) URL", "url", "url_invalid")
    events = params["enabled_events"]
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise invalid("Invalid array", "enabled_events")
    metadata = check_metadata(params.get("metadata", {}), "metadata")
    description = str(params["description"]) if params.get("description") else None
    begin_execution()
    endpoint = sandbox().add_endpoint(url, events, description, metadata)
    return endpoint.public(with_secret=True)


@api.get("/webhook_endpoints")
async def list_webhook_endpoints() -> dict[str, Any]:
    """List endpoints, newest first, without their secrets."""
    check_known(g.params, {"limit", "starting_after", "ending_before", "expand"})
    endpoints = [e.public() for e in reversed(sandbox().endpoints.values())]
    return paginate(endpoints, g.params, "/v1/webhook_endpoints", "webhook_endpoint")


@api.get("/webhook_endpoints/<endpoint_id>")
async def retrieve_webhook_endpoint(endpoint_id: str) -> dict[str, Any]:
    """Retrieve one endpoint, without its secret."""
    endpoint = sandbox().endpoints.get(endpoint_id)
    if endpoint is None:
        raise no_such("webhook_endpoint", endpoint_id)
    return endpoint.public()


@api.get("/disputes/<dispute_id>")
async def retrieve_dispute(dispute_id: str) -> dict[str, Any]:
    """Retrieve one dispute."""
    check_known(g.params, {"expand"})
    dispute = sandbox().disputes.get(dispute_id)
    if dispute is None:
        raise no_such("dispute", dispute_id)
    return dispute.to_stripe()


@api.get("/disputes")
async def list_disputes() -> dict[str, Any]:
    """List disputes newest first, optionally of one charge or payment intent."""
    params = g.params
    check_known(
        params, {"charge", "payment_intent", "limit", "starting_after", "ending_before", "expand"}
    )
    disputes = list(reversed(sandbox().disputes.values()))
    if params.get("charge"):
        disputes = [d for d in disputes if d.charge.id == params["charge"]]
    if params.get("payment_intent"):
        disputes = [d for d in disputes if d.charge.payment_intent_id == params["payment_intent"]]
    return paginate([d.to_stripe() for d in disputes], params, "/v1/disputes", "dispute")
