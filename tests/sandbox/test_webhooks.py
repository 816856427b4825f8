"""Webhook delivery: signatures, retries with backoff, giving up, resend, and chaos knobs."""

from __future__ import annotations

import itertools
import json

import aiohttp
import pytest
import stripe

from .support import WEBHOOK_SECRET, Receiver, Sandbox, session_params


async def expire_new_session(sandbox: Sandbox) -> str:
    """Create and expire a session: the quickest way to make the sandbox emit an event."""
    session = await sandbox.client.v1.checkout.sessions.create_async(params=session_params())
    await sandbox.client.v1.checkout.sessions.expire_async(session.id)
    return session.id


async def test_every_delivery_verifies_with_the_sdk(sandbox: Sandbox) -> None:
    session_id = await expire_new_session(sandbox)
    await sandbox.receiver.wait_for(lambda: sandbox.receiver.about(session_id))
    received = sandbox.receiver.about(session_id)[0]
    header = received.headers["Stripe-Signature"]
    assert header.startswith("t=") and ",v1=" in header
    event = stripe.Webhook.construct_event(received.body, header, WEBHOOK_SECRET)
    assert event.type == "checkout.session.expired"
    assert event.id.startswith("evt_")
    assert event.data.object.id == session_id
    payload = received.event
    assert payload["object"] == "event" and payload["livemode"] is False
    assert payload["api_version"]
    assert payload["request"]["id"].startswith("req_")
    assert received.headers["Content-Type"].startswith("application/json")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(received.body, header, "whsec_someone_else_secret")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(received.body + " ", header, WEBHOOK_SECRET)


async def test_retries_with_backoff_until_the_endpoint_answers_2xx(make_sandbox) -> None:
    receiver = Receiver(fail_first=2)
    async with make_sandbox(receiver_options=receiver, retry_schedule=(0.1, 0.3)) as sandbox:
        session_id = await expire_new_session(sandbox)
        await sandbox.state.wait_idle(5)
        attempts = sandbox.receiver.about(session_id)
        assert [a.status for a in attempts] == [500, 500, 200]
        assert len({a.event["id"] for a in attempts}) == 1
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
        assert gaps[0] >= 0.09 and gaps[1] >= 0.29
        assert sandbox.state.stats["retries"] == 2
        assert sandbox.state.stats["deliveries_succeeded"] == 1
        event_id = attempts[0].event["id"]
        delivered = await sandbox.client.v1.events.list_async(params={"delivery_success": True})
        assert event_id in [e.id for e in delivered.data]


async def test_gives_up_after_the_schedule_then_resend_delivers(make_sandbox) -> None:
    receiver = Receiver(always_status=503)
    async with make_sandbox(receiver_options=receiver, retry_schedule=(0.02, 0.04)) as sandbox:
        session_id = await expire_new_session(sandbox)
        await sandbox.state.wait_idle(5)
        assert len(sandbox.receiver.about(session_id)) == 3
        assert sandbox.state.stats["deliveries_failed"] == 1
        failing = await sandbox.client.v1.events.list_async(params={"delivery_success": False})
        assert len(failing.data) == 1
        event_id = failing.data[0].id
        assert failing.data[0].pending_webhooks == 1

        receiver.always_status = None
        async with aiohttp.ClientSession() as http:
            url = f"{sandbox.url}/_sandbox/events/{event_id}/resend"
            async with http.post(url) as response:
                page = await response.text()
        assert response.status == 200 and event_id in page
        assert [r.status for r in sandbox.receiver.about(session_id)][-1] == 200
        event = await sandbox.client.v1.events.retrieve_async(event_id)
        assert event.pending_webhooks == 0
        delivered = await sandbox.client.v1.events.list_async(params={"delivery_success": True})
        assert [e.id for e in delivered.data] == [event_id]


async def test_unreachable_endpoint_counts_as_failed_attempts(make_sandbox) -> None:
    receiver = Receiver()
    async with make_sandbox(receiver_options=receiver, retry_schedule=(0.01,)) as sandbox:
        # Point the default endpoint at a closed port.
        sandbox.state.endpoints["we_default"].url = "http://127.0.0.1:9/hook"
        await expire_new_session(sandbox)
        await sandbox.state.wait_idle(5)
        deliveries = next(iter(sandbox.state.deliverer.deliveries.values()))
        assert deliveries[0].state == "failed"
        assert all(a.error and a.status is None for a in deliveries[0].attempts)


async def test_duplicate_rate_sends_the_same_event_twice(make_sandbox) -> None:
    async with make_sandbox(duplicate_rate=1.0) as sandbox:
        session_id = await expire_new_session(sandbox)
        await sandbox.state.wait_idle(5)
        received = sandbox.receiver.about(session_id)
        assert len(received) == 2
        assert received[0].event["id"] == received[1].event["id"]
        assert sandbox.state.stats["duplicates_sent"] == 1


async def test_drop_first_rate_loses_the_first_attempt_then_retries(make_sandbox) -> None:
    async with make_sandbox(drop_first_rate=1.0) as sandbox:
        session_id = await expire_new_session(sandbox)
        await sandbox.state.wait_idle(5)
        assert len(sandbox.receiver.about(session_id)) == 1
        stats = sandbox.state.stats
        assert stats["dropped_first_attempts"] == 1
        assert stats["retries"] == 1
        assert stats["delivery_attempts"] == 2
        assert stats["deliveries_succeeded"] == 1


async def test_shuffle_window_delivers_every_event_out_of_order(make_sandbox) -> None:
    async with make_sandbox(shuffle_window=6, seed=7) as sandbox:
        created = [await expire_new_session(sandbox) for _ in range(6)]
        await sandbox.state.wait_idle(5)
        arrived = [r.event["data"]["object"]["id"] for r in sandbox.receiver.received]
        assert sorted(arrived) == sorted(created)
        assert arrived != created


async def test_an_unfilled_shuffle_window_is_flushed_after_the_max_wait(make_sandbox) -> None:
    async with make_sandbox(shuffle_window=50, shuffle_max_wait=0.2) as sandbox:
        created = [await expire_new_session(sandbox) for _ in range(2)]
        await sandbox.receiver.wait_for(lambda: len(sandbox.receiver.received) == 2, 2)
        arrived = {r.event["data"]["object"]["id"] for r in sandbox.receiver.received}
        assert arrived == set(created)


async def test_wait_idle_times_out_while_retries_are_pending(make_sandbox) -> None:
    receiver = Receiver(always_status=500)
    async with make_sandbox(receiver_options=receiver, retry_schedule=(30.0,)) as sandbox:
        await expire_new_session(sandbox)
        with pytest.raises(TimeoutError):
            await sandbox.state.wait_idle(0.3)


async def test_registered_endpoint_gets_its_events_signed_with_its_secret(
    sandbox: Sandbox,
) -> None:
    endpoint = await sandbox.client.v1.webhook_endpoints.create_async(
        params={
            "url": sandbox.receiver.url + "/hook?endpoint=second",
            "enabled_events": ["checkout.session.expired"],
        }
    )
    assert isinstance(endpoint, stripe.WebhookEndpoint)
    assert endpoint.secret.startswith("whsec_") and endpoint.secret != WEBHOOK_SECRET
    listed = await sandbox.client.v1.webhook_endpoints.list_async()
    assert endpoint.id in [e.id for e in listed.data]
    assert all(getattr(e, "secret", None) is None for e in listed.data)
    try:
        session_id = await expire_new_session(sandbox)
        await sandbox.receiver.wait_for(lambda: len(sandbox.receiver.about(session_id)) == 2)
        bodies = sandbox.receiver.about(session_id)
        verified = 0
        for received in bodies:
            for secret in (WEBHOOK_SECRET, endpoint.secret):
                try:
                    stripe.Webhook.construct_event(
                        received.body, received.headers["Stripe-Signature"], secret
                    )
                    verified += 1
                except stripe.SignatureVerificationError:
                    pass
        assert verified == 2  # each copy verifies with exactly its own endpoint's secret
    finally:
        del sandbox.state.endpoints[endpoint.id]


async def test_stats_endpoint_and_events_page(sandbox: Sandbox) -> None:
    await expire_new_session(sandbox)
    await sandbox.state.wait_idle(5)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sandbox.url}/_sandbox/stats") as response:
            stats = await response.json()
        async with http.get(f"{sandbox.url}/_sandbox/events") as response:
            page = await response.text()
            csp = response.headers["Content-Security-Policy"]
        async with http.get(f"{sandbox.url}/") as response:
            home = await response.text()
    assert stats == sandbox.state.stats
    assert stats["events_created"] >= 1 and stats["delivery_attempts"] >= 1
    assert "checkout.session.expired" in page and "Resend" in page
    assert sandbox.receiver.url in page
    assert "<script" not in page and "default-src 'none'" in csp
    for html in (page, home):
        assert WEBHOOK_SECRET not in html
    assert "whsec_****" in home
    # Plain JSON for a chaos test to print: it survives a round trip unchanged.
    assert json.loads(json.dumps(stats)) == stats
