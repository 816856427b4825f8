"""Webhook ingestion and receipt status polls: one worker, and the whole machine on both sides."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import aiohttp

from bench import fixtures, measure, targets
from bench.fixtures import Ingested
from bench.measure import (
    BrokenTarget,
    Goal,
    Series,
    Target,
    expect_2xx,
    goal_at_least,
    goal_at_most,
    ratio,
    ratio_goal,
    ratio_to_best,
    run_rounds,
)
from bench.procs import Server, servers
from bench.scenarios import Section
from bench.targets import CORES, FLASK_WORKERS

WEBHOOK_SECONDS = 5.0
CLOSED_SECONDS = 5.0
PACED_SECONDS = 10.0
# Closed-loop polls per second recorded before the 204 answer (RESULTS.md of the first round).
POLLS_BEFORE = 1170.0
_HX_GET = re.compile(r'hx-get="([^"]+)"')


def webhooks(per_round: int = 15_000) -> Section:
    """Signed checkout.session.completed events: verify, dedupe, transition, committed."""
    db = fixtures.fresh_database("webhooks")
    dbs = {
        "ours": db,
        "flask": fixtures.copy_database(db, "webhooks-flask"),
        "all": fixtures.copy_database(db, "webhooks-all"),
        "gthread": fixtures.copy_database(db, "webhooks-gthread"),
    }
    ours = targets.shop("shop-webhooks", dbs["ours"])
    sync = targets.flask("flask-webhooks", dbs["flask"])
    whole = targets.shop("shop-webhooks-all", dbs["all"], workers=CORES)
    threaded = targets.flask("flask-webhooks-gthread", dbs["gthread"], threads=10)
    labels = {
        ours: "ours: Hypercorn, 1 worker",
        sync: f"Flask + gunicorn, {FLASK_WORKERS} sync workers",
        whole: f"whole machine: ours, Hypercorn {CORES} workers",
        threaded: f"Flask + gunicorn gthread, {FLASK_WORKERS} workers x 10 threads",
    }
    where = dict(zip(labels, dbs.values(), strict=True))
    plan, tags = [], {}
    for server, label in labels.items():
        plan.append(_webhook_target(server, label, where[server], per_round))
        tags[label] = [f"{server.name}{r}" for r in range(measure.ROUNDS)]
    with servers(*labels):
        found = run_rounds(plan, warmup=0)
        memory = {"ours: Hypercorn worker": ours.rss_mb()}
    section = Section(
        "Webhook ingestion: verify + dedupe + transition, committed",
        f"wrk 50 connections POST up to {per_round:,} distinct pre-signed "
        "checkout.session.completed events per round, each for its own pending order; "
        "afterwards the database is counted.",
        list(found.values()),
        memory_mb=memory,
        unit="events/s",
    )
    for server, label in labels.items():
        count_rounds(
            section, found[label], partial(fixtures.count_ingested, where[server]), tags[label]
        )
    best = [labels[sync], labels[threaded]]
    section.ratios = [
        ratio(found, labels[ours], labels[sync]),
        ratio_to_best(found, labels[whole], best, 1.3),
        ratio(found, labels[whole], labels[ours]),
    ]
    lost_any = any("LOST" in n for n in section.notes)
    section.goals = [
        goal_at_least("≥ 1,000 events/s", found[labels[ours]].median, 1000.0, " events/s"),
        Goal(
            "zero lost (rows counted after the run)",
            "lost" if lost_any else "0 lost",
            not lost_any,
        ),
        ratio_goal(section.ratios[1], f"whole machine ({CORES} vs {FLASK_WORKERS}): ≥ 1.3x Flask"),
    ]
    return section


def _webhook_target(server: Server, label: str, db: Path, per_round: int) -> Target:
    name = server.name
    orders = {
        r: fixtures.add_pending_orders(db, per_round, f"{name}{r}") for r in range(measure.ROUNDS)
    }

    def prepare(round_no: int) -> list[str]:
        # Signed just before the round: the shop refuses signatures older than 300 s.
        path = fixtures.write_events(orders[round_no], f"{name}{round_no}")
        return [str(path), "2"]

    return Target(
        label,
        server.url + "/webhook",
        50,
        WEBHOOK_SECONDS,
        script="webhooks.lua",
        prepare=prepare,
    )


def count_rounds(
    section: Section, entry: Series, count: Callable[[str], Ingested], tags: list[str]
) -> None:
    """Count what each round committed; an acknowledged event without its row is lost."""
    for round_no, result in enumerate(entry.results):
        counted = count(tags[round_no])
        acked = int(result.extra.get("acked", 0))
        repeats = int(result.extra.get("repeats", 0))
        lost = max(0, acked - repeats - counted.events)
        entry.notes.append(
            f"round {round_no + 1}: {acked:,} acknowledged, {counted.events:,} events and "
            f"{counted.paid:,} paid orders committed, {repeats} repeats, {lost} lost"
        )
        if lost or counted.paid != counted.events:
            section.notes.append(f"{entry.label}: round {round_no + 1} LOST EVENTS")
        # Distinct events acknowledged per second of the run.
        entry.values[round_no] = result.rps * max(acked - repeats, 0) / max(result.requests, 1)


def polling(pages: int = 2000) -> Section:
    """Receipt status polls: capacity, and latency with 2,000 open pages polling every 2 s.

    A receipt's polls are for an order just created, so every run polls
    ``pages`` orders written just before it (``fresh_polls``): by the shop's
    own rules none is due a Stripe sync (that waits until an order has been
    quiet for ``STOREFRONT_STATUS_SYNC_AFTER``, 30 s) and each is on the
    2-second step of the poll schedule, as on a page opened back from Stripe.
    """
    db = fixtures.fresh_database("polling")
    flask_db = fixtures.copy_database(db, "polling-flask")
    # Should a run outlast the sync delay, its polls ask a sandbox that answers at
    # once (it knows none of these sessions: a quick 404), not an unreachable host.
    sandbox = targets.sandbox(0)
    with servers(sandbox):
        api = sandbox.url
        ours = targets.shop("shop-polling", db, api_base=api)
        whole = targets.shop("shop-polling-all", db, api_base=api, workers=CORES)
        sync = targets.flask("flask-polling", flask_db)
        threaded = targets.flask("flask-polling-gthread", flask_db, threads=10)
        with servers(ours, whole, sync, threaded):
            probe = fresh_polls(db, 1, "poll-probe", ours.url, versioned=True)
            return _polling(pages, ours, whole, sync, threaded, db, flask_db, probe is not None)


def fresh_polls(db: Path, count: int, tag: str, url: str, *, versioned: bool) -> list[str] | None:
    """Poll paths of ``count`` pending orders created now: plain, or as their pages carry them.

    ``versioned``: the URL each order's status fragment carries in its hx-get,
    read from ``url``, when it names the order's version and an unchanged poll
    answers 204; None when the shop's fragments carry no such URL.
    """
    orders = fixtures.add_pending_orders(db, count, tag)
    plain = [f"/orders/{o.token}/status" for o in orders]
    return asyncio.run(_versioned_paths(url, plain)) if versioned else plain


async def _versioned_paths(url: str, plain: list[str]) -> list[str] | None:
    """The poll URLs the status fragments carry, when they carry the order's version.

    A page polls the URL in its fragment's hx-get. Once that URL names the version
    the page shows, an unchanged order answers 204 with no body; until then it is
    the plain status URL and this returns None (no 204 row).
    """
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20)) as http:

        async def carried(path: str) -> str | None:
            async with http.get(url + path) as response:
                found = _HX_GET.search(await response.text())
            return html.unescape(found.group(1)) if found else None

        first = await carried(plain[0])
        if first is None or "?" not in first:
            return None
        found = await asyncio.gather(*(carried(p) for p in plain))
        if any(f is None for f in found):
            return None
        async with http.get(url + str(found[0])) as response:
            if response.status != 204:
                return None
    return [str(f) for f in found]


def _polling(
    pages: int,
    ours: Server,
    whole: Server,
    sync: Server,
    threaded: Server,
    db: Path,
    flask_db: Path,
    unchanged: bool,
) -> Section:
    """Run the polling rounds once every server is up."""
    closed = "ours: Hypercorn, 1 worker, full render, closed loop 50 connections"
    fresh = "ours: Hypercorn, 1 worker, unchanged polls (204), closed loop 50 connections"
    whole_closed = f"whole machine: ours, Hypercorn {CORES} workers, closed loop 50 connections"
    base = f"Flask + gunicorn, {FLASK_WORKERS} sync workers, closed loop 50 connections"
    base_t = f"Flask + gunicorn gthread, {FLASK_WORKERS} workers x 10 threads, closed loop 50"
    paced = f"ours: 1 worker, {pages:,} open pages, one poll per 2 s each"
    paced_all = f"whole machine: ours, Hypercorn {CORES} workers, {pages:,} open pages"

    def target(
        label: str, server: Server, *, paced_load: bool = False, versioned: bool = unchanged
    ) -> Target:
        name = server.name + ("-paced" if paced_load else "") + ("-v" if versioned else "")
        where = flask_db if server in (sync, threaded) else db

        def prepare(round_no: int) -> list[str]:
            tag = f"{name}-{round_no}"
            found = fresh_polls(where, pages, tag, server.url, versioned=versioned)
            if found is None:
                raise BrokenTarget(f"{label}: the status fragments stopped carrying their version")
            # One poll as the load sends it must answer 2xx, or the run means nothing.
            expect_2xx(label, server.url + found[0])
            return [str(fixtures.write_paths(found, tag))]

        if paced_load:
            return Target(label, server.url + "/", pages, PACED_SECONDS, "poll_paced.lua",
                          prepare=prepare)  # fmt: skip
        return Target(label, server.url + "/", 50, CLOSED_SECONDS, "poll.lua", prepare=prepare)

    plan = [target(closed, ours, versioned=False)]
    if unchanged:
        plan.append(target(fresh, ours))
    plan += [
        target(whole_closed, whole),
        target(base, sync, versioned=False),
        target(base_t, threaded, versioned=False),
        target(paced, ours, paced_load=True),
        target(paced_all, whole, paced_load=True),
    ]
    found = run_rounds(plan)
    memory = {f"ours: Hypercorn worker after {pages:,} open pages": ours.rss_mb()}
    kind = "unchanged polls answered 204" if unchanged else "full renders (no 204 path yet)"
    section = Section(
        "Receipt status polling",
        f"GET /orders/<token>/status over {pages:,} pending orders created just before each "
        "run (none due a Stripe sync, as on a page just back from Stripe). Capacity: wrk "
        "closed loop. "
        f"Paced: {pages:,} keep-alive connections, each waiting 0-4 s (2 s on average) before "
        f"each poll, i.e. an offered {pages // 2:,} polls/s; p99 is measured under that load. "
        f"Pages poll the URL their fragment carries; in this run those were {kind}.",
        list(found.values()),
        memory_mb=memory,
        unit="polls/s",
    )
    section.ratios = [
        ratio(found, closed, base),
        ratio_to_best(found, whole_closed, [base, base_t], 1.5),
    ]
    target = 2 * POLLS_BEFORE
    if unchanged:
        section.ratios.insert(0, ratio(found, fresh, closed, 2.0))
        capacity = ratio_goal(section.ratios[0], "closed-loop capacity ≥ 2x the full render's")
    else:
        capacity = goal_at_least(
            f"closed-loop capacity ≥ 2x {POLLS_BEFORE:,.0f}/s (no 204 path yet: full renders)",
            found[closed].median,
            target,
            " polls/s",
        )
    section.goals = [
        capacity,
        goal_at_most(f"p99 < 100 ms at {pages:,} open pages", found[paced].p99, 100.0, " ms"),
        ratio_goal(
            section.ratios[-1],
            f"whole machine ({CORES} vs {FLASK_WORKERS}): closed loop ≥ 1.5x Flask",
        ),
    ]
    return section
