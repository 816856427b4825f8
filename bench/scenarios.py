"""The load scenarios of the issue: checkout, catalog, webhooks and receipt polling."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench import fixtures, measure, targets
from bench.measure import (
    Goal,
    Ratio,
    Series,
    Target,
    goal_at_least,
    goal_at_most,
    ratio,
    run_rounds,
)
from bench.procs import Server, servers

LATENCY_MS = 300
SLUG = "enamel-mug"
VARIANTS = "bench.variants"


@dataclass
class Section:
    """One scenario's figures, as the report prints them."""

    title: str
    setup: str
    series: list[Series]
    ratios: list[Ratio] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    memory_mb: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unit: str = "req/s"


def checkout() -> list[Section]:
    """Checkout creation against the sandbox at 300 ms, at 100 and 500 shoppers."""
    sandbox = targets.sandbox(LATENCY_MS)
    with servers(sandbox):
        api = sandbox.url
        ours = targets.shop("shop-checkout", fixtures.fresh_database("checkout"), api_base=api)
        httpx = targets.shop(
            "shop-checkout-httpx",
            fixtures.fresh_database("checkout-httpx"),
            api_base=api,
            app=f"{VARIANTS}:httpx_client()",
        )
        uvloop = targets.shop(
            "shop-checkout-uvloop",
            fixtures.fresh_database("checkout-uvloop"),
            api_base=api,
            worker_class="uvloop",
        )
        sync = targets.flask("flask-sync", fixtures.fresh_database("flask-sync"), api_base=api)
        threaded = targets.flask(
            "flask-gthread", fixtures.fresh_database("flask-gthread"), api_base=api, threads=20
        )
        threaded500 = targets.flask(
            "flask-gthread-500",
            fixtures.fresh_database("flask-gthread-500"),
            api_base=api,
            threads=100,
        )
        path = f"/checkout/{SLUG}"
        labels = {
            ours: "ours: Quart + Hypercorn, 1 worker, aiohttp",
            sync: "Flask + gunicorn, 5 sync workers",
            threaded: "Flask + gunicorn gthread, 5 workers x 20 threads",
            httpx: "variant: ours with the SDK's httpx client",
            uvloop: "variant: ours on Hypercorn's uvloop worker",
        }
        labels500 = {
            ours: labels[ours],
            threaded500: "Flask + gunicorn gthread, 5 workers x 100 threads",
        }
        with servers(*labels):
            plan = [Target(labels[s], s.url + path, 100, script="checkout.lua") for s in labels]
            found = run_rounds(plan)
            with servers(threaded500):
                plan = [
                    Target(labels500[s], s.url + path, 500, script="checkout.lua")
                    for s in labels500
                ]
                found500 = run_rounds(plan)
                memory = {
                    "ours: Hypercorn worker": ours.rss_mb(),
                    "Flask gthread: 5 workers summed": threaded500.rss_mb(),
                }
        bound = 100 / (LATENCY_MS / 1000)
        first = Section(
            "Checkout creation, 100 concurrent shoppers",
            f"POST /checkout/{SLUG} (new order + Checkout Session each), sandbox API latency "
            f"{LATENCY_MS} ms, wrk 100 connections; latency bound 100 ÷ 0.3 s = {bound:.0f}/s.",
            list(found.values()),
        )
        first.ratios = [
            ratio(found, labels[ours], labels[sync], 15.0),
            ratio(found, labels[ours], labels[threaded], 1.0),
            ratio(found, labels[httpx], labels[ours]),
            ratio(found, labels[uvloop], labels[ours]),
        ]
        first.goals = [
            goal_at_least(
                "≥ 85 % of the latency bound", found[labels[ours]].median / bound * 100, 85.0, " %"
            ),
            _ratio_goal(first.ratios[0], "≥ 15x the sync Flask baseline"),
            _ratio_goal(first.ratios[1], "≥ 1.0x the threaded Flask baseline"),
        ]

        second = Section(
            "Checkout creation, 500 concurrent shoppers",
            f"As above with wrk 500 connections; latency bound 500 ÷ 0.3 s = {bound * 5:.0f}/s. "
            "Both servers share the machine's two cores with the sandbox and wrk.",
            list(found500.values()),
            memory_mb=memory,
        )
        second.ratios = [ratio(found500, labels500[ours], labels500[threaded500], 1.0)]
        second.goals = [_ratio_goal(second.ratios[0], "≥ 1.0x the threaded Flask baseline")]
        return [first, second]


def catalog() -> Section:
    """The DB-backed catalog page against the server's limit and the Flask baseline."""
    db = fixtures.fresh_database("catalog")
    flask_db = fixtures.copy_database(db, "catalog-flask")
    shop1 = targets.shop("shop-catalog-1", db)
    hello1 = targets.hypercorn("hello-1", targets.HELLO)
    shop2 = targets.shop("shop-catalog-2", db, workers=2)
    hello2 = targets.hypercorn("hello-2", targets.HELLO, workers=2)
    flask2 = targets.flask("flask-catalog-2", flask_db, workers=2)
    granian = targets.shop_granian("granian-catalog-1", db)
    uvloop = targets.shop("shop-catalog-uvloop", db, worker_class="uvloop")
    labels = {
        shop1: "ours: Hypercorn, 1 worker",
        hello1: "raw ASGI hello-world: Hypercorn, 1 worker",
        shop2: "ours: Hypercorn, 2 workers",
        flask2: "Flask + gunicorn, 2 sync workers",
        hello2: "raw ASGI hello-world: Hypercorn, 2 workers",
        granian: "extra: ours on granian, 1 worker",
        uvloop: "variant: ours on Hypercorn's uvloop worker",
    }
    with servers(*labels):
        found = run_rounds([Target(labels[s], s.url + "/", 50, duration=6) for s in labels])
        memory = {"ours: Hypercorn worker (1-worker run)": shop1.rss_mb()}
    section = Section(
        "Catalog page (DB-backed), 50 connections",
        "GET / renders every product from SQLite with a fresh Buy nonce per card; wrk 50 "
        "connections. Hello-world is the smallest ASGI app on the same server.",
        list(found.values()),
        memory_mb=memory,
    )
    section.ratios = [
        ratio(found, labels[shop1], labels[hello1], 0.45),
        ratio(found, labels[shop2], labels[flask2], 1.0),
        ratio(found, labels[shop2], labels[hello2]),
        ratio(found, labels[granian], labels[shop1]),
        ratio(found, labels[uvloop], labels[shop1]),
    ]
    section.goals = [
        _ratio_goal(section.ratios[0], "≥ 45 % of raw Hypercorn hello-world (1 vs 1)"),
        _ratio_goal(section.ratios[1], "≥ 1.0x the Flask baseline (2 vs 2)"),
    ]
    return section


def webhooks(per_round: int = 25_000) -> Section:
    """Signed checkout.session.completed events: verify, dedupe, transition, committed."""
    db = fixtures.fresh_database("webhooks")
    flask_db = fixtures.copy_database(db, "webhooks-flask")
    two_db = fixtures.copy_database(db, "webhooks-2")
    ours = targets.shop("shop-webhooks", db)
    flask5 = targets.flask("flask-webhooks", flask_db)
    two = targets.shop("shop-webhooks-2", two_db, workers=2)
    labels = {
        ours: "ours: Hypercorn, 1 worker",
        flask5: "Flask + gunicorn, 5 sync workers",
        two: "extra: ours, Hypercorn 2 workers",
    }
    dbs = {ours: db, flask5: flask_db, two: two_db}
    plan: list[Target] = []
    tags: dict[str, list[str]] = {}
    for server, label in labels.items():
        name = server.name
        orders = {
            r: fixtures.add_pending_orders(dbs[server], per_round, f"{name}{r}")
            for r in range(measure.ROUNDS)
        }
        tags[label] = [f"{name}{r}" for r in range(measure.ROUNDS)]

        def prepare(round_no: int, orders: dict = orders, name: str = name) -> list[str]:
            # Signed just before the round: the shop refuses signatures older than 300 s.
            path = fixtures.write_events(orders[round_no], f"{name}{round_no}")
            return [str(path), "2"]

        plan.append(
            Target(label, server.url + "/webhook", 50, script="webhooks.lua", prepare=prepare)
        )
    with servers(*labels):
        found = run_rounds(plan, warmup=0)
        memory = {"ours: Hypercorn worker": ours.rss_mb()}
    section = Section(
        "Webhook ingestion: verify + dedupe + transition, committed",
        f"wrk 50 connections POST {per_round:,} distinct pre-signed checkout.session.completed "
        "events per round, each for its own pending order; afterwards the database is counted.",
        list(found.values()),
        memory_mb=memory,
        unit="events/s",
    )
    for server, label in labels.items():
        entry = found[label]
        for round_no, result in enumerate(entry.results):
            counted = fixtures.count_ingested(dbs[server], tags[label][round_no])
            acked = int(result.extra.get("acked", 0))
            repeats = int(result.extra.get("repeats", 0))
            lost = max(0, acked - repeats - counted.events)
            entry.notes.append(
                f"round {round_no + 1}: {acked:,} acknowledged, {counted.events:,} events and "
                f"{counted.paid:,} paid orders committed, {repeats} repeats, {lost} lost"
            )
            if lost or counted.paid != counted.events:
                section.notes.append(f"{label}: round {round_no + 1} LOST EVENTS")
            # Distinct events acknowledged per second of the run.
            entry.values[round_no] = result.rps * max(acked - repeats, 0) / max(result.requests, 1)
    section.ratios = [
        ratio(found, labels[ours], labels[flask5]),
        ratio(found, labels[two], labels[ours]),
    ]
    lost_any = any("LOST" in n for n in section.notes)
    section.goals = [
        goal_at_least("≥ 1,000 events/s", found[labels[ours]].median, 1000.0, " events/s"),
        Goal(
            "zero lost (rows counted after the run)",
            "lost" if lost_any else "0 lost",
            not lost_any,
        ),
    ]
    return section


def polling(pages: int = 2000) -> Section:
    """Receipt status polling: capacity, and latency with 2,000 open pages polling every 2 s."""
    db = fixtures.fresh_database("polling")
    flask_db = fixtures.copy_database(db, "polling-flask")
    orders = fixtures.add_pending_orders(db, pages, "poll")
    flask_orders = fixtures.add_pending_orders(flask_db, pages, "poll")
    paths = fixtures.write_paths([f"/orders/{o.token}/status" for o in orders], "ours")
    flask_paths = fixtures.write_paths(
        [f"/orders/{o.token}/status" for o in flask_orders], "flask"
    )
    # Polls of old pending orders may ask Stripe about them: give them a sandbox
    # that answers at once (it knows none of these sessions: a quick 404).
    sandbox = targets.sandbox(0)
    ours = targets.shop("shop-polling", db, api_base="")
    ours2 = targets.shop("shop-polling-2", db, api_base="", workers=2)
    flask5 = targets.flask("flask-polling", flask_db)
    with servers(sandbox):
        ours.env["STRIPE_API_BASE"] = ours2.env["STRIPE_API_BASE"] = sandbox.url
        return _polling(pages, ours, ours2, flask5, paths, flask_paths)


def _polling(
    pages: int, ours: Server, ours2: Server, flask5: Server, paths: Path, flask_paths: Path
) -> Section:
    """Run the polling rounds once the sandbox is up."""
    closed = "ours: Hypercorn, 1 worker, closed loop 50 connections"
    base = "Flask + gunicorn, 5 sync workers, closed loop 50 connections"
    paced = f"ours: {pages:,} open pages, one poll per 2 s each"
    paced2 = f"extra: ours, Hypercorn 2 workers, {pages:,} open pages"
    with servers(ours, ours2, flask5):
        found = run_rounds(
            [
                Target(closed, ours.url + "/", 50, script="poll.lua", args=[str(paths)]),
                Target(base, flask5.url + "/", 50, script="poll.lua", args=[str(flask_paths)]),
                Target(
                    paced,
                    ours.url + "/",
                    pages,
                    duration=12,
                    script="poll_paced.lua",
                    args=[str(paths)],
                ),
                Target(
                    paced2,
                    ours2.url + "/",
                    pages,
                    duration=12,
                    script="poll_paced.lua",
                    args=[str(paths)],
                ),
            ]
        )
        memory = {f"ours: Hypercorn worker after {pages:,} open pages": ours.rss_mb()}
    section = Section(
        "Receipt status polling",
        f"GET /orders/<token>/status over {pages:,} pending orders. Capacity: wrk closed loop. "
        f"Paced: {pages:,} keep-alive connections, each waiting 0-4 s (2 s on average) before "
        f"each poll, i.e. an offered {pages // 2:,} polls/s; p99 is measured under that load.",
        list(found.values()),
        memory_mb=memory,
        unit="polls/s",
    )
    section.ratios = [ratio(found, closed, base)]
    section.goals = [
        goal_at_least("≥ 1,000 polls/s (capacity)", found[closed].median, 1000.0, " polls/s"),
        goal_at_most("p99 < 100 ms at 2,000 open pages", found[paced].p99, 100.0, " ms"),
    ]
    return section


def _ratio_goal(r: Ratio, text: str) -> Goal:
    assert r.goal is not None
    return goal_at_least(text, r.median, r.goal, "x")
