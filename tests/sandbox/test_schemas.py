"""Schema contract: every JSON body the sandbox answers or delivers fits the pinned version.

Bodies are checked by ``tests.stripe_schema`` against the installed SDK's declared types and
Stripe's published spec. API answers go through ``target``, so with ``-m stripe_live`` the same
checks run against Stripe test mode; paying needs the hosted page or the sandbox's test helpers,
so the paid flows and the webhook payloads are the sandbox's own. The answers of those helpers
(``/_sandbox/...``) are the sandbox's tools, not Stripe objects, and are skipped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import stripe

from tests.stripe_schema import problems, problems_any

from .support import Sandbox, Target, session_params

CARD_FORM = {"email": "shopper@example.com", "expiry": "12/34", "cvc": "123", "name": "Ada"}
SEPA_FORM = {"email": "shopper@example.com", "name": "Ada Shopper"}
EVENT_TYPES = {
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "charge.refunded",
    "refund.created",
    "charge.dispute.created",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.closed",
    "charge.dispute.funds_reinstated",
}


def is_sandbox_tool(url: str) -> bool:
    """True for the sandbox's ``/_sandbox`` tools: their answers are no Stripe objects."""
    return urlsplit(url).path.startswith("/_sandbox/")


def raw(answer: Any) -> Any:
    """The JSON body an SDK call received, exactly as sent."""
    assert answer.last_response is not None
    return json.loads(answer.last_response.body)


@dataclass
class Bodies:
    """Labelled JSON bodies and what the validator found wrong in each."""

    bodies: list[tuple[str, Any]] = field(default_factory=list)
    # Answers of the sandbox's own tools, seen but not checked.
    skipped: list[str] = field(default_factory=list)

    def add(self, label: str, body: Any) -> Any:
        self.bodies.append((label, body))
        return body

    def answer(self, label: str, answer: Any) -> Any:
        """Keep an SDK answer's raw body; return the answer for the next step."""
        self.add(label, raw(answer))
        return answer

    def http(self, label: str, url: str, body: Any) -> Any:
        """Keep a plain HTTP answer, unless a ``/_sandbox`` tool gave it; return the body."""
        if is_sandbox_tool(url):
            self.skipped.append(label)
        else:
            self.add(label, body)
        return body

    def invalid(self) -> list[str]:
        return [
            f"{label} {problem}" for label, body in self.bodies for problem in problems_any(body)
        ]

    def assert_valid(self) -> None:
        bad = sum(1 for _, body in self.bodies if problems_any(body))
        found = self.invalid()
        assert not found, (
            f"{bad} of {len(self.bodies)} bodies invalid ({len(found)} problems):\n"
            + "\n".join(found[:60])
        )


async def error_body(call: Callable[[], Any]) -> Any:
    """The JSON body of a call that must fail with a Stripe error."""
    with pytest.raises(stripe.StripeError) as caught:
        await call()
    return caught.value.json_body


# -- API answers, against the sandbox and (with -m stripe_live) Stripe ---------------------


async def test_session_answers_are_valid(target: Target) -> None:
    sessions = target.client.v1.checkout.sessions
    bodies = Bodies()
    created = bodies.answer("create", await sessions.create_async(params=session_params()))
    bodies.answer(
        "create+expand",
        await sessions.create_async(params=session_params(expand=["line_items"])),
    )
    bodies.answer("retrieve", await sessions.retrieve_async(created.id))
    bodies.answer(
        "retrieve+expand",
        await sessions.retrieve_async(
            created.id, params={"expand": ["line_items", "payment_intent"]}
        ),
    )
    bodies.answer("list", await sessions.list_async(params={"limit": 3}))
    bodies.answer("line_items", await sessions.line_items.list_async(created.id))
    bodies.answer("expire", await sessions.expire_async(created.id))
    assert bodies.bodies[-1][1]["status"] == "expired"
    assert bodies.bodies[0][1]["ui_mode"] == "hosted_page"
    bodies.assert_valid()


async def test_event_answers_are_valid(target: Target) -> None:
    sessions = target.client.v1.checkout.sessions
    created = await sessions.create_async(params=session_params())
    await sessions.expire_async(created.id)
    bodies = Bodies()
    listed = bodies.answer("events", await target.client.v1.events.list_async(params={"limit": 5}))
    assert listed.data, "expiring a session makes at least one event"
    bodies.answer("event", await target.client.v1.events.retrieve_async(listed.data[0].id))
    bodies.assert_valid()


async def test_webhook_endpoint_answers_are_valid(target: Target) -> None:
    endpoints = target.client.v1.webhook_endpoints
    bodies = Bodies()
    listed = bodies.answer("endpoints", await endpoints.list_async(params={"limit": 3}))
    if target.sandbox:
        # Registering one on a real account would leave it behind; the sandbox forgets.
        created = bodies.answer(
            "endpoint create",
            await endpoints.create_async(
                params={
                    "url": "https://example.com/hook",
                    # An event the sandbox never sends: nothing is delivered to it.
                    "enabled_events": ["customer.created"],
                    "description": "schema contract",
                    "metadata": {"suite": "schemas"},
                }
            ),
        )
        assert bodies.bodies[-1][1]["secret"].startswith("whsec_")
        retrieved = raw(bodies.answer("endpoint", await endpoints.retrieve_async(created.id)))
        assert "secret" not in retrieved
        assert (retrieved["description"], retrieved["metadata"]) == (
            "schema contract",
            {"suite": "schemas"},
        )
    elif listed.data:
        bodies.answer("endpoint", await endpoints.retrieve_async(listed.data[0].id))
    bodies.assert_valid()


async def test_error_answers_are_valid(target: Target) -> None:
    sessions = target.client.v1.checkout.sessions
    created = await sessions.create_async(params=session_params())
    await sessions.expire_async(created.id)
    missing = session_params()
    del missing["line_items"]
    bodies = Bodies()
    bodies.add("404", await error_body(lambda: sessions.retrieve_async("cs_test_nosuch")))
    bodies.add("missing", await error_body(lambda: sessions.create_async(params=missing)))
    bodies.add(
        "unknown",
        await error_body(lambda: sessions.create_async(params=session_params(colour="red"))),
    )
    bodies.add("expire twice", await error_body(lambda: sessions.expire_async(created.id)))
    bodies.add(
        "refund unknown",
        await error_body(
            lambda: target.client.v1.refunds.create_async(params={"payment_intent": "pi_nosuch"})
        ),
    )
    assert all("error" in body for _, body in bodies.bodies)
    bodies.assert_valid()


# -- paid flows and webhook payloads, sandbox only -------------------------------------------


@dataclass
class World:
    """Every body of the paid flows, and every webhook payload they caused."""

    answers: Bodies
    payloads: Bodies
    sandbox: Sandbox


class Shopper:
    """Pays on the hosted page with plain form posts, as a browser without JavaScript."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def post(self, url: str, form: dict[str, str]) -> int:
        async with self.http.post(url, data=form, allow_redirects=False) as response:
            return response.status

    async def card(self, session: stripe.checkout.Session, number: str) -> int:
        return await self.post(f"{session.url}/card", {**CARD_FORM, "number": number})

    async def bank(self, session: stripe.checkout.Session, iban: str) -> int:
        return await self.post(f"{session.url}/bank", {**SEPA_FORM, "iban": iban})


class Tools:
    """The sandbox's ``/_sandbox`` test helpers, over plain HTTP; answers go to ``Bodies``."""

    def __init__(self, http: aiohttp.ClientSession, sandbox: Sandbox, answers: Bodies) -> None:
        self.http = http
        self.sandbox = sandbox
        self.answers = answers

    async def post(self, label: str, path: str, form: dict[str, str]) -> Any:
        url = f"{self.sandbox.url}{path}"
        async with self.http.post(url, data=form) as response:
            body = await response.json()
            assert response.status == 200, body
        return self.answers.http(label, url, body)

    async def complete(self, session: stripe.checkout.Session, **form: str) -> Any:
        return await self.post(
            "helper complete", f"/_sandbox/sessions/{session.id}/complete", form
        )

    async def checked(self, label: str, path: str, form: dict[str, str]) -> Any:
        """A helper whose answer is a Stripe object (a dispute, a refund): validated too."""
        async with self.http.post(f"{self.sandbox.url}{path}", data=form) as response:
            body = await response.json()
            assert response.status == 200, body
        return self.answers.add(label, body)

    async def advance(self, seconds: int) -> Any:
        return await self.post(
            "clock advance", "/_sandbox/clock/advance", {"seconds": str(seconds)}
        )


# A day and a minute of sandbox time: every session still open expires, every debit settles.
A_DAY_LATER = 24 * 3600 + 60


async def _paid_flows(sandbox: Sandbox, shopper: Shopper, tools: Tools, answers: Bodies) -> None:
    """Card, declined-then-paid, 3D Secure, SEPA both ways, the helpers, the clock, refunds."""
    sessions = sandbox.client.v1.checkout.sessions
    everything = {"expand": ["line_items", "payment_intent"]}

    async def new(**overrides: Any) -> stripe.checkout.Session:
        created = await sessions.create_async(params=session_params(**overrides))
        return answers.answer("create", created)

    card = await new()
    assert await shopper.card(card, "4242424242424242") == 303
    declined = await new(metadata={"flow": "declined"})
    assert await shopper.card(declined, "4000000000000002") == 402
    assert await shopper.card(declined, "5555555555554444") == 303
    secure = await new(customer_email="three.d@example.com")
    assert await shopper.card(secure, "4000002500003155") == 303
    assert await shopper.post(f"{secure.url}/authenticate", {"outcome": "complete"}) == 303
    settles = await new(allowed_payment_method_types=["sepa_debit"])
    assert await shopper.bank(settles, "DE89370400440532013000") == 303
    bounces = await new(excluded_payment_method_types=["card"])
    assert await shopper.bank(bounces, "DE62370400440532013001") == 303
    processing = await sessions.retrieve_async(settles.id, params=everything)
    answers.answer("retrieve processing", processing)
    expired = await new()
    answers.answer("expire", await sessions.expire_async(expired.id))
    # Paid without a browser, through the test helper.
    helper_paid = await new(metadata={"flow": "helper card"})
    assert (await tools.complete(helper_paid, email="helper@example.com"))["status"] == "complete"
    helper_settles = await new(metadata={"flow": "helper debit"})
    await tools.complete(helper_settles, payment_method="sepa_debit")
    helper_bounces = await new(metadata={"flow": "helper bounce"})
    await tools.complete(helper_bounces, payment_method="sepa_debit", outcome="failed")
    lapses = await new(metadata={"flow": "clock expiry"})
    # The test clock, not real time, settles all four debits and expires the open session.
    moved = await tools.advance(A_DAY_LATER)
    assert (moved["settled_payments"], moved["expired_sessions"]) == (4, 1)
    await sandbox.state.wait_idle(10)

    intents = {}
    flows = (card, declined, secure, settles, bounces, expired)
    for session in (*flows, helper_paid, helper_settles, helper_bounces, lapses):
        fetched = await sessions.retrieve_async(session.id, params=everything)
        answers.answer("retrieve", fetched)
        answers.answer("line_items", await sessions.line_items.list_async(session.id))
        intents[session.id] = fetched.payment_intent.id if fetched.payment_intent else None
    assert (await sessions.retrieve_async(lapses.id)).status == "expired"
    by_intent = {"payment_intent": intents[card.id], "expand": ["data.line_items"]}
    answers.answer("list by intent", await sessions.list_async(params=by_intent))
    answers.answer("list", await sessions.list_async(params={"limit": 100}))

    refunds = sandbox.client.v1.refunds
    made = []
    for label, params in (
        ("refund partial", {"payment_intent": intents[card.id], "amount": 1000}),
        ("refund rest", {"payment_intent": intents[card.id], "reason": "requested_by_customer"}),
        ("refund full", {"payment_intent": intents[declined.id]}),
        ("refund debit", {"payment_intent": intents[settles.id], "metadata": {"why": "test"}}),
        ("refund helper", {"payment_intent": intents[helper_paid.id]}),
        ("refund helper debit", {"payment_intent": intents[helper_settles.id]}),
    ):
        made.append(answers.answer(label, await refunds.create_async(params=params)))
    await _refund_reads(sandbox, answers, made)
    await _backoffice_flows(sandbox, shopper, tools, answers, new)
    await sandbox.state.wait_idle(10)
    events = sandbox.client.v1.events
    listed = answers.answer("events", await events.list_async(params={"limit": 100}))
    for event in listed.data:
        answers.answer("event", await events.retrieve_async(event.id))


async def _refund_reads(sandbox: Sandbox, answers: Bodies, made: list[stripe.Refund]) -> None:
    """Retrieve every refund, and list them whole, by page, by intent and by charge."""
    refunds = sandbox.client.v1.refunds
    for refund in made:
        answers.answer("refund retrieve", await refunds.retrieve_async(refund.id))
    listed = answers.answer("refunds", await refunds.list_async(params={"limit": 100}))
    # Newest first, in the order they were made, though several share one second.
    assert [r.id for r in listed.data] == [r.id for r in reversed(made)]
    page = answers.answer("refunds page", await refunds.list_async(params={"limit": 2}))
    after = {"limit": 2, "starting_after": page.data[-1].id}
    answers.answer("refunds next page", await refunds.list_async(params=after))
    card = made[0]
    by_intent = {"payment_intent": str(card.payment_intent)}
    of_intent = answers.answer("refunds by intent", await refunds.list_async(params=by_intent))
    assert [r.id for r in of_intent.data] == [made[1].id, card.id]  # rest, then partial
    by_charge = {"charge": str(card.charge)}
    of_charge = answers.answer("refunds by charge", await refunds.list_async(params=by_charge))
    assert [r.id for r in of_charge.data] == [made[1].id, card.id]


async def _backoffice_flows(
    sandbox: Sandbox,
    shopper: Shopper,
    tools: Tools,
    answers: Bodies,
    new: Callable[..., Any],
) -> None:
    """A dispute test card, disputes opened and closed by the helpers, a Dashboard refund."""
    sessions = sandbox.client.v1.checkout.sessions
    disputes = sandbox.client.v1.disputes
    auto = await new(metadata={"flow": "dispute card"})
    assert await shopper.card(auto, "4000000000000259") == 303
    won = await new(metadata={"flow": "dispute won"})
    await tools.complete(won)
    outside = await new(metadata={"flow": "dashboard refund"})
    await tools.complete(outside)
    intent = {}
    for session in (auto, won, outside):
        fetched = answers.answer("retrieve", await sessions.retrieve_async(session.id))
        intent[session.id] = str(fetched.payment_intent)
    opened = await tools.checked(
        "dispute open",
        f"/_sandbox/sessions/{won.id}/dispute",
        {"reason": "product_not_received", "amount": "1000"},
    )
    await tools.checked(
        "dispute close", f"/_sandbox/disputes/{opened['id']}/close", {"outcome": "won"}
    )
    by_intent = {"payment_intent": intent[auto.id]}
    of_auto = answers.answer("disputes by intent", await disputes.list_async(params=by_intent))
    assert [d.reason for d in of_auto.data] == ["fraudulent"]
    lost = of_auto.data[0]
    await tools.checked("dispute lose", f"/_sandbox/disputes/{lost.id}/close", {"outcome": "lost"})
    for dispute_id in (opened["id"], lost.id):
        answers.answer("dispute retrieve", await disputes.retrieve_async(dispute_id))
    listed = answers.answer("disputes", await disputes.list_async(params={"limit": 100}))
    assert [d.id for d in listed.data] == [opened["id"], lost.id]
    by_charge = {"charge": opened["charge"], "limit": 1}
    answers.answer("disputes by charge", await disputes.list_async(params=by_charge))
    refused = {"payment_intent": intent[auto.id]}
    answers.add(
        "refund disputed",
        await error_body(lambda: sandbox.client.v1.refunds.create_async(params=refused)),
    )
    path = f"/_sandbox/sessions/{outside.id}/refund"
    await tools.checked("dashboard refund", path, {"amount": "500"})
    await tools.checked("dashboard refund rest", path, {"reason": "requested_by_customer"})


@pytest.fixture(scope="module")
async def world(make_sandbox: Callable[..., Any]) -> AsyncIterator[World]:
    """A private sandbox run through every flow once; its receiver saw every payload."""
    # Debits settle after an hour of sandbox time: only the test clock settles them here,
    # so the processing intent is there to be retrieved first.
    async with (
        make_sandbox(async_payment_delay=3600.0) as sandbox,
        aiohttp.ClientSession() as http,
    ):
        answers = Bodies()
        await _paid_flows(sandbox, Shopper(http), Tools(http, sandbox, answers), answers)
        payloads = Bodies()
        for received in sandbox.receiver.received:
            payloads.add(f"webhook {received.event['type']}", json.loads(received.body))
        yield World(answers, payloads, sandbox)


async def test_paid_flow_answers_are_valid(world: World) -> None:
    assert len(world.answers.bodies) > 30
    world.answers.assert_valid()


async def test_the_sandbox_tools_answers_are_skipped(world: World) -> None:
    assert sorted(set(world.answers.skipped)) == ["clock advance", "helper complete"]
    kinds = {body.get("object") for _, body in world.answers.bodies}
    assert "sandbox.clock" not in kinds
    assert {"refund", "list", "checkout.session", "event"} <= kinds


def test_only_sandbox_tools_are_skipped() -> None:
    bodies = Bodies()
    clock = {"object": "sandbox.clock", "now": 1, "offset": 0}
    bodies.http("clock", "http://127.0.0.1:1/_sandbox/clock", clock)
    assert (bodies.bodies, bodies.skipped) == ([], ["clock"])
    bodies.http("api", "http://127.0.0.1:1/v1/sandbox/clock", clock)
    assert bodies.invalid() == ["api $: unknown object type 'sandbox.clock'"]


async def test_webhook_payloads_are_valid(world: World) -> None:
    assert {body["type"] for _, body in world.payloads.bodies} == EVENT_TYPES
    world.payloads.assert_valid()


def last_flow_intent(world: World, flow: str) -> str:
    """The payment intent id of the paid session of one flow."""
    paid = [
        s for s in _sessions(world) if s["metadata"].get("flow") == flow and s["payment_intent"]
    ]
    intent = paid[-1]["payment_intent"]
    return intent if isinstance(intent, str) else intent["id"]


def _sessions(world: World) -> list[dict[str, Any]]:
    """Every session body among the answers, list elements included."""
    found = []
    for _, body in world.answers.bodies:
        found += body["data"] if body.get("object") == "list" else [body]
    return [body for body in found if body.get("object") == "checkout.session"]


async def test_the_flows_show_every_shape(world: World) -> None:
    sessions = _sessions(world)
    assert {s["status"] for s in sessions} == {"open", "complete", "expired"}
    assert {s["payment_status"] for s in sessions} == {"paid", "unpaid"}
    assert any("line_items" in s for s in sessions)
    intents = [s["payment_intent"] for s in sessions if isinstance(s["payment_intent"], dict)]
    assert {i["status"] for i in intents} == {"succeeded", "processing", "requires_payment_method"}
    failed = next(i for i in intents if i["status"] == "requires_payment_method")
    assert failed["last_payment_error"]["payment_method_type"] == "sepa_debit"
    assert all(i["latest_charge"] for i in intents if i["status"] == "succeeded")

    events = [body for _, body in world.payloads.bodies]
    refunded = [e["data"] for e in events if e["type"] == "charge.refunded"]
    charges = [data["object"] for data in refunded]
    assert {c["refunded"] for c in charges} == {False, True}
    assert all(data["previous_attributes"]["amount_refunded"] >= 0 for data in refunded)
    details = [c["payment_method_details"] for c in charges]
    assert {d["type"] for d in details} == {"card", "sepa_debit"}
    cards = [d["card"] for d in details if d["type"] == "card"]
    assert {c["brand"] for c in cards} == {"visa", "mastercard"}


async def test_the_helpers_and_the_clock_leave_stripe_shapes(world: World) -> None:
    expanded = [s for s in _sessions(world) if isinstance(s["payment_intent"], dict)]
    expanded += [s for s in _sessions(world) if s["metadata"].get("flow") == "clock expiry"]
    last = {s["metadata"].get("flow"): s for s in expanded}  # the latest body of each flow
    paid, debit = last["helper card"], last["helper debit"]
    assert (paid["payment_status"], paid["customer_details"]["email"]) == (
        "paid",
        "helper@example.com",
    )
    assert debit["payment_intent"]["status"] == "succeeded"
    assert last["helper bounce"]["payment_intent"]["status"] == "requires_payment_method"
    lapsed = last["clock expiry"]
    assert (lapsed["status"], lapsed["url"]) == ("expired", None)
    expired_events = [
        body
        for _, body in world.payloads.bodies
        if body["type"] == "checkout.session.expired"
        and body["data"]["object"]["id"] == lapsed["id"]
    ]
    # Caused by time, not by a request.
    assert expired_events and expired_events[0]["request"] == {"id": None, "idempotency_key": None}
    refunded = [body for _, body in world.payloads.bodies if body["type"] == "charge.refunded"]
    # Each API refund's event names its request; a Dashboard refund's names none.
    dashboard = last_flow_intent(world, "dashboard refund")
    by_api = [e for e in refunded if e["data"]["object"]["payment_intent"] != dashboard]
    outside = [e for e in refunded if e["data"]["object"]["payment_intent"] == dashboard]
    assert by_api and all(event["request"]["id"] for event in by_api)
    assert len(outside) == 2
    assert all(e["request"] == {"id": None, "idempotency_key": None} for e in outside)
    debit_charge = next(
        event["data"]["object"]
        for event in refunded
        if event["data"]["object"]["payment_intent"] == debit["payment_intent"]["id"]
    )
    # The helper debited Stripe's test IBAN ending 3000.
    assert debit_charge["payment_method_details"]["sepa_debit"]["last4"] == "3000"


async def test_three_d_secure_is_recorded_on_the_charge(world: World) -> None:
    secure = next(
        s
        for s in world.sandbox.state.sessions.values()
        if s.customer_email == "three.d@example.com"
    )
    assert secure.charge is not None
    charge = secure.charge.to_stripe()
    assert charge["payment_method_details"]["card"]["three_d_secure"]["result"] == "authenticated"
    assert problems(charge, stripe.Charge) == []


# -- the validator itself can fail -----------------------------------------------------------


def _as_form(value: Any) -> Any:
    """Parameters as the sandbox's form parser hands them over: every leaf a string."""
    if isinstance(value, dict):
        return {key: _as_form(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_form(item) for item in value]
    return str(value)


def _valid_session() -> dict[str, Any]:
    """A complete session body the validator accepts, taken from the sandbox's builder."""
    from storefront.sandbox.checkout import build_session

    session = build_session(_as_form(session_params()), 1_800_000_000, "http://127.0.0.1:1")
    return session.to_stripe({"line_items"})


def test_a_complete_session_passes() -> None:
    assert problems(_valid_session(), stripe.checkout.Session) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.pop("automatic_tax"), "$.automatic_tax: required field missing"),
        (lambda s: s.pop("cancel_url"), "$.cancel_url: missing"),
        (lambda s: s.update(ui_mode="hosted"), "$.ui_mode: 'hosted' is not one of"),
        (lambda s: s.update(amount_total="3998"), "$.amount_total: expected int"),
        (lambda s: s.update(livemode=None), "$.livemode: must not be null"),
        (lambda s: s.update(colour="red"), "$.colour: not a field of"),
        (lambda s: s["custom_text"].pop("submit"), "$.custom_text.submit: missing"),
        (
            lambda s: s["line_items"]["data"][0]["price"].pop("billing_scheme"),
            "$.line_items.data[0].price.billing_scheme: required field missing",
        ),
        (lambda s: s.update(line_items=None), "$.line_items: may be absent but never null"),
        (lambda s: s.update(payment_intent=7), "$.payment_intent: expected an object"),
        (lambda s: s.update(custom_fields={}), "$.custom_fields: expected a list"),
        (lambda s: s["metadata"].update(n=1), "$.metadata.n: expected str"),
        (
            lambda s: s["line_items"]["data"][0]["price"].update(unit_amount_decimal=1999),
            "$.line_items.data[0].price.unit_amount_decimal: expected Decimal",
        ),
    ],
    ids=[
        "missing-required",
        "missing-nullable",
        "enum",
        "type",
        "null",
        "unknown-field",
        "nested-missing",
        "nested-price",
        "never-null",
        "expandable",
        "list",
        "metadata",
        "decimal",
    ],
)
def test_the_validator_reports_each_kind_of_problem(
    change: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    body = _valid_session()
    change(body)
    found = problems(body, stripe.checkout.Session)
    assert any(p.startswith(expected) for p in found), found


def test_errors_and_event_objects_are_checked_too() -> None:
    assert problems_any({"error": {"type": "card_error", "message": "x"}}) == []
    assert problems_any({"error": {"message": "no type"}}) == [
        "$.error.type: required field missing"
    ]
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": 1,
        "data": {"object": {"object": "refund", "id": "re_1"}},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": "charge.refunded",
    }
    found = problems_any(event)
    assert "$.data.object.amount: required field missing" in found
    event["type"] = "charge.refundedd"
    assert any(
        p.startswith("$.type: 'charge.refundedd' is not one of") for p in problems_any(event)
    )
