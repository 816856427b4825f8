"""The load scenarios of the issue: checkout (Buy now and carts) and the catalog.

Webhooks and receipt polls are in ``bench.ingest``, past one process in ``bench.scaleout``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import carts, fixtures, measure, targets
from bench.measure import (
    Goal,
    Ratio,
    Series,
    Target,
    goal_at_least,
    goal_at_most,
    ratio,
    ratio_goal,
    ratio_to_best,
    run_rounds,
)
from bench.procs import Server, servers, settle
from bench.targets import CORES, FLASK_WORKERS

LATENCY_MS = 300
# Each API call takes 300 ms ± up to 100 ms, uniformly (the mean, and so the latency
# bound, stay 300 ms). With a constant latency every shopper's call that started
# together wakes together, and the answers queue behind one another in a convoy
# no real API's varying latency forms; the 100-shopper section keeps a row at the
# constant latency beside it, to show the difference (bench/README.md, findings).
LATENCY_JITTER_MS = 100
SLUG = "enamel-mug"
# Seconds per wrk run of a checkout target (make bench stays under 15 minutes).
DURATION = 5.0
RACE_BOUND_MS = 1000.0


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
    """Checkout against the sandbox at 300 ± 100 ms: Buy now and 3-item carts, 100 and 500."""
    sandbox = targets.sandbox(LATENCY_MS, LATENCY_JITTER_MS)
    steady = targets.sandbox(LATENCY_MS)
    with servers(sandbox, steady):
        api = sandbox.url
        ours = targets.shop("shop-checkout", fixtures.fresh_database("checkout"), api_base=api)
        cart_db = carts.cart_database("checkout-cart")
        cart = targets.shop("shop-cart", cart_db, api_base=api)
        convoy = targets.shop(
            "shop-checkout-steady", fixtures.fresh_database("checkout-steady"), api_base=steady.url
        )
        with servers(ours, cart, convoy):
            first = _checkout100(api, ours, cart, cart_db, convoy)
            # Before the 500-shopper rounds, whose abandoned requests take longest to drain.
            race = _race(cart, cart_db)
            second = _checkout500(api, ours, cart, cart_db)
        return [first, second, race]


def _drained(server: Server) -> Callable[[], None]:
    # wrk abandons its open requests when it stops, and each still waits on the
    # sandbox: let them finish before this server's next run is timed.
    return lambda: settle(server.tree(), within=3.0)


def _buy(label: str, server: Server, connections: int) -> Target:
    return Target(
        label, server.url + f"/checkout/{SLUG}", connections, DURATION, script="checkout.lua",
        settle=_drained(server),
    )  # fmt: skip


def _cart_target(label: str, server: Server, db: Path, connections: int, tag: str) -> Target:
    # Enough filled carts that a round seldom checks one out twice (a repeat is fine:
    # each checkout opens its own order).
    tokens = carts.add_carts(db, 4000, carts.CART)
    path = carts.write_tokens(tokens, tag)
    return Target(
        label,
        server.url + "/",
        connections,
        DURATION,
        script="cart_checkout.lua",
        args=[str(path)],
        settle=_drained(server),
    )


def _checkout100(api: str, ours: Server, cart: Server, cart_db: Path, convoy: Server) -> Section:
    sync = targets.flask("flask-sync", fixtures.fresh_database("flask-sync"), api_base=api)
    threaded = targets.flask(
        "flask-gthread", fixtures.fresh_database("flask-gthread"), api_base=api, threads=20
    )
    labels = {
        ours: "ours: Quart + Hypercorn, 1 worker, aiohttp",
        cart: "ours: 3-item cart with stock reservation, 1 worker",
        sync: f"Flask + gunicorn, {FLASK_WORKERS} sync workers",
        threaded: f"Flask + gunicorn gthread, {FLASK_WORKERS} workers x 20 threads",
        convoy: f"ours, 1 worker, against a constant {LATENCY_MS} ms (no jitter)",
    }
    plan = [_buy(labels[s], s, 100) for s in (ours, sync, threaded, convoy)]
    plan.insert(1, _cart_target(labels[cart], cart, cart_db, 100, "100"))
    with servers(sync, threaded):
        found = run_rounds(plan)
    bound = 100 / (LATENCY_MS / 1000)
    section = Section(
        "Checkout creation, 100 concurrent shoppers",
        f"POST /checkout/{SLUG} (new order + Checkout Session each), sandbox API latency "
        f"{LATENCY_MS} ± {LATENCY_JITTER_MS} ms (uniform, so {LATENCY_MS} ms on average), "
        f"wrk 100 connections; latency bound 100 ÷ 0.3 s = {bound:.0f}/s. "
        "The cart row POSTs /cart/checkout with the cookie of a cart filled before the round "
        "(one unit each of three products with counted stock): one order, three lines, "
        "three reservations and one session per request. The last row is the Buy now row "
        f"against a second sandbox whose every call takes exactly {LATENCY_MS} ms: the "
        "shoppers' calls then wake in step and queue behind one another (a convoy).",
        list(found.values()),
    )
    mine, basket = labels[ours], labels[cart]
    steady_share = found[labels[convoy]].median / bound * 100
    section.notes.append(
        f"{labels[convoy]}: {steady_share:.1f} % of the latency bound (no goal: the convoy "
        "is the constant latency's, see bench/README.md)"
    )
    section.ratios = [
        ratio(found, mine, labels[sync], 15.0),
        ratio(found, mine, labels[threaded], 1.0),
        ratio(found, basket, labels[sync], 15.0),
        ratio(found, basket, labels[threaded], 1.0),
    ]
    section.goals = [
        goal_at_least("≥ 85 % of the latency bound", found[mine].median / bound * 100, 85.0, " %"),
        ratio_goal(section.ratios[0], "≥ 15x the sync Flask baseline"),
        ratio_goal(section.ratios[1], "≥ 1.0x the threaded Flask baseline"),
        goal_at_least(
            "cart: ≥ 85 % of the latency bound", found[basket].median / bound * 100, 85.0, " %"
        ),
        ratio_goal(section.ratios[2], "cart: ≥ 15x the sync Flask baseline"),
        ratio_goal(section.ratios[3], "cart: ≥ 1.0x the threaded Flask baseline"),
    ]
    return section


def _checkout500(api: str, ours: Server, cart: Server, cart_db: Path) -> Section:
    whole = targets.shop(
        "shop-checkout-all", fixtures.fresh_database("checkout-all"), api_base=api, workers=CORES
    )
    whole_cart_db = carts.cart_database("checkout-cart-all")
    whole_cart = targets.shop("shop-cart-all", whole_cart_db, api_base=api, workers=CORES)
    threaded = targets.flask(
        "flask-gthread-500",
        fixtures.fresh_database("flask-gthread-500"),
        api_base=api,
        threads=100,
    )
    labels = {
        ours: "ours: Quart + Hypercorn, 1 worker, aiohttp",
        cart: "ours: 3-item cart, 1 worker",
        whole: f"whole machine: ours, Hypercorn {CORES} workers",
        whole_cart: f"whole machine: ours, 3-item cart, Hypercorn {CORES} workers",
        threaded: f"Flask + gunicorn gthread, {FLASK_WORKERS} workers x 100 threads",
    }
    with servers(whole, whole_cart, threaded):
        plan = [
            _buy(labels[ours], ours, 500),
            _cart_target(labels[cart], cart, cart_db, 500, "500"),
            _buy(labels[whole], whole, 500),
            _cart_target(labels[whole_cart], whole_cart, whole_cart_db, 500, "500-all"),
            _buy(labels[threaded], threaded, 500),
        ]
        found = run_rounds(plan)
        memory = {
            "ours: one Hypercorn worker": ours.rss_mb(),
            f"whole machine: ours, Hypercorn {CORES} workers, every process (RSS)": (
                whole.tree_rss_mb()
            ),
            f"Flask gthread: gunicorn {FLASK_WORKERS} workers, every process (RSS)": (
                threaded.tree_rss_mb()
            ),
        }
        ours_pss, flask_pss = whole.tree_pss_mb(), threaded.tree_pss_mb()
        memory |= {
            f"whole machine: ours, Hypercorn {CORES} workers, every process (PSS)": ours_pss,
            f"Flask gthread: gunicorn {FLASK_WORKERS} workers, every process (PSS)": flask_pss,
        }
    bound = 500 / (LATENCY_MS / 1000)
    section = Section(
        "Checkout creation, 500 concurrent shoppers",
        f"As above with wrk 500 connections; latency bound 500 ÷ 0.3 s = {bound:.0f}/s. "
        f"Every server shares the machine's {CORES} cores with the sandbox and wrk. Memory "
        "is read after these rounds, summed over every process of each server, masters "
        "included; the goal takes PSS, which splits pages that forked workers share "
        "instead of counting them in each (RSS).",
        list(found.values()),
        memory_mb=memory,
    )
    base = labels[threaded]
    section.ratios = [
        ratio(found, labels[ours], base, 1.0),
        ratio(found, labels[cart], base, 1.0),
        ratio(found, labels[whole], base, 1.5),
        ratio(found, labels[whole_cart], base, 1.5),
    ]
    share = ours_pss / max(flask_pss, 1.0)
    section.goals = [
        ratio_goal(section.ratios[0], "≥ 1.0x the threaded Flask baseline"),
        ratio_goal(section.ratios[1], "cart: ≥ 1.0x the threaded Flask baseline"),
        ratio_goal(
            section.ratios[2], f"whole machine ({CORES} vs {FLASK_WORKERS}): ≥ 1.5x threaded Flask"
        ),
        ratio_goal(section.ratios[3], "whole machine, cart: ≥ 1.5x threaded Flask"),
        goal_at_most(
            "whole machine: memory ≤ ½ of Flask's, summed over processes (PSS)", share, 0.5, "x"
        ),
    ]
    return section


def _race(cart: Server, cart_db: Path, shoppers: int = 100, stock: int = 5) -> Section:
    rounds = [carts.race(cart, cart_db, f"r{n}", shoppers, stock) for n in range(measure.ROUNDS)]
    series, goals = carts.race_goals(
        "ours: 1 Hypercorn worker, sandbox at 300 ± 100 ms", rounds, stock, RACE_BOUND_MS
    )
    return Section(
        f"Carts: {shoppers} shoppers racing for the last {stock} units",
        f"A product with {stock} units left; {shoppers} carts holding one each POST "
        "/cart/checkout at the same moment (one connection each, released together). "
        f"Exactly {stock} may open a checkout (303 to the payment page); the rest must be "
        "told it is sold out (409). The figure is each round's p99 from the shoppers' side.",
        [series],
        goals=goals,
        unit="ms p99",
    )


def catalog() -> Section:
    """The DB-backed catalog page against the server's limit and the Flask baselines."""
    db = fixtures.fresh_database("catalog")
    flask_db = fixtures.copy_database(db, "catalog-flask")
    shop1 = targets.shop("shop-catalog-1", db)
    hello1 = targets.hypercorn("hello-1", targets.HELLO)
    whole = targets.shop("shop-catalog-all", db, workers=CORES)
    hello_all = targets.hypercorn("hello-all", targets.HELLO, workers=CORES)
    sync = targets.flask("flask-catalog", flask_db)
    threaded = targets.flask("flask-catalog-gthread", flask_db, threads=10)
    granian = targets.shop_granian("granian-catalog-1", db)
    labels = {
        shop1: "ours: Hypercorn, 1 worker",
        hello1: "raw ASGI hello-world: Hypercorn, 1 worker",
        whole: f"whole machine: ours, Hypercorn {CORES} workers",
        sync: f"Flask + gunicorn, {FLASK_WORKERS} sync workers",
        threaded: f"Flask + gunicorn gthread, {FLASK_WORKERS} workers x 10 threads",
        hello_all: f"raw ASGI hello-world: Hypercorn, {CORES} workers",
        granian: "extra: ours on granian, 1 worker",
    }
    with servers(*labels):
        found = run_rounds([Target(labels[s], s.url + "/", 50, duration=5) for s in labels])
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
        ratio_to_best(found, labels[whole], [labels[sync], labels[threaded]], 2.0),
        ratio(found, labels[whole], labels[sync]),
        ratio(found, labels[whole], labels[threaded]),
        ratio(found, labels[whole], labels[hello_all]),
        ratio(found, labels[granian], labels[shop1]),
    ]
    section.goals = [
        ratio_goal(section.ratios[0], "≥ 0.45x raw Hypercorn hello-world (1 vs 1)"),
        ratio_goal(section.ratios[1], f"whole machine ({CORES} vs {FLASK_WORKERS}): ≥ 2x Flask"),
    ]
    return section
