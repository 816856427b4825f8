"""Past one process: 1, 2 and 3 shop instances behind HAProxy on PostgreSQL, beside SQLite.

Every configuration is up at once and loaded in turn, round by round, so the
ratios between them are taken in the same rounds. Around every run the CPU time
of each process group is read from /proc: the shop instances, PostgreSQL, HAProxy,
the sandbox, wrk, and the rest of the machine (other work on the same cores).
"""

from __future__ import annotations

import shutil
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from bench import fixtures, measure, pgcluster, targets
from bench.fixtures import Ingested
from bench.ingest import count_rounds
from bench.measure import Goal, Series, Target, ratio, run_rounds
from bench.procs import (
    HOST,
    OUT,
    Server,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    settle,
)
from bench.scenarios import LATENCY_JITTER_MS, LATENCY_MS, SLUG, Section
from bench.targets import CORES

SECONDS = 4.0
EVENTS_PER_ROUND = 10_000
SHOPPERS = 200
GROUPS = ("shops", "postgres", "haproxy", "sandbox", "wrk", "rest of the machine")


def _haproxy() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if found is None:
        raise RuntimeError("HAProxy is required for the scale-out rounds: apt-get install haproxy")
    return found


def haproxy_config(port: int, backends: Sequence[int]) -> str:
    """Round robin over the instances, each health-checked on GET /healthz."""
    servers = "\n".join(f"    server shop{i} {HOST}:{p} check" for i, p in enumerate(backends, 1))
    return f"""global
    maxconn 8192

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s

frontend shop
    bind {HOST}:{port}
    default_backend shops

backend shops
    balance roundrobin
    option httpchk GET /healthz
    # A loaded instance answers its health check late (it queues behind the load):
    # that is not death, and a benchmark must not take it out of the rotation.
    timeout check 10s
    default-server inter 2s fall 5 rise 1
{servers}
"""


@dataclass
class Stack:
    """One configuration: its instances, its proxy, and where its data lives."""

    label: str
    instances: list[Server]
    proxy: Server
    add_orders: Callable[[int, str], list[fixtures.PendingOrder]]
    count: Callable[[str], Ingested]
    database: Callable[[], list[int]]  # the database server's processes (none for SQLite)

    def probe(self, sandbox: Server) -> Callable[[], dict[str, float]]:
        """CPU seconds so far of each process group, and of the whole machine."""

        def read() -> dict[str, float]:
            return {
                "shops": cpu_seconds([p for s in self.instances for p in s.tree()]),
                "postgres": cpu_seconds(self.database()),
                "haproxy": cpu_seconds(self.proxy.tree()),
                "sandbox": cpu_seconds(sandbox.tree()),
                "machine": machine_busy_seconds(),
            }

        return read

    def settle(self, sandbox: Server) -> Callable[[], None]:
        """Wait until the instances and the sandbox finished the last run's leftovers."""
        return lambda: settle(
            [p for s in (*self.instances, sandbox) for p in s.tree()], within=5.0
        )


def _stack(
    label: str, tag: str, count: int, database_url: str | None, cluster: pgcluster.Cluster | None
) -> Stack:
    # On PostgreSQL the shop never opens its SQLite path: no file needs making.
    db = fixtures.fresh_database(f"scaleout-{tag}") if database_url is None else OUT / "unused"
    # STRIPE_API_BASE is set once the sandbox is up (_running).
    instances = [
        targets.shop(f"scaleout-{tag}-{i}", db, database_url=database_url)
        for i in range(1, count + 1)
    ]
    port = free_port()
    config = OUT / f"haproxy-{tag}.cfg"
    config.write_text(haproxy_config(port, [s.port for s in instances]), encoding="utf-8")
    proxy = Server(f"haproxy-{tag}", [_haproxy(), "-db", "-f", str(config)], port, {}, "/healthz")
    if database_url is None:
        return Stack(
            label,
            instances,
            proxy,
            lambda n, t: fixtures.add_pending_orders(db, n, t),
            lambda t: fixtures.count_ingested(db, t),
            list,
        )
    assert cluster is not None
    url = database_url
    return Stack(
        label,
        instances,
        proxy,
        lambda n, t: pgcluster.add_pending_orders(url, n, t),
        lambda t: pgcluster.count_ingested(url, t),
        cluster.pids,
    )


def _wait_healthy(proxy: Server, within: float = 30.0) -> None:
    """Until the proxy has an instance up and passes /healthz through."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(proxy.url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proxy.name}: no healthy instance within {within:.0f} s")


@contextmanager
def _running(stacks: list[Stack], sandbox: Server) -> Iterator[None]:
    with ExitStack() as stack:
        for s in stacks:
            for instance in s.instances:
                instance.env["STRIPE_API_BASE"] = sandbox.url
                stack.enter_context(instance)
            stack.enter_context(s.proxy)
            _wait_healthy(s.proxy)
        yield


def scaleout() -> list[Section]:
    """Webhooks and checkouts per second: SQLite 1, PostgreSQL 1, 2, 3 instances, via HAProxy."""
    with pgcluster.Cluster() as cluster, targets.sandbox(LATENCY_MS, LATENCY_JITTER_MS) as sandbox:
        stacks = [_stack("SQLite, 1 instance", "sqlite", 1, None, None)]
        for n in (1, 2, 3):
            url = cluster.new_database(f"scaleout_{n}")
            label = f"PostgreSQL, {n} instance{'s' if n > 1 else ''}"
            stacks.append(_stack(label, f"pg{n}", n, url, cluster))
        with _running(stacks, sandbox):
            hooks = _webhook_rounds(stacks, sandbox)
            buys = _checkout_rounds(stacks, sandbox)
    return [hooks, buys]


def _webhook_rounds(stacks: list[Stack], sandbox: Server) -> Section:
    plan, tags = [], {}
    for s in stacks:
        name = s.proxy.name
        orders = {r: s.add_orders(EVENTS_PER_ROUND, f"{name}{r}") for r in range(measure.ROUNDS)}
        tags[s.label] = [f"{name}{r}" for r in range(measure.ROUNDS)]

        def prepare(round_no: int, orders: dict = orders, name: str = name) -> list[str]:
            path = fixtures.write_events(orders[round_no], f"{name}{round_no}")
            return [str(path), "2"]

        plan.append(
            Target(
                s.label,
                s.proxy.url + "/webhook",
                50,
                SECONDS,
                "webhooks.lua",
                prepare=prepare,
                probe=s.probe(sandbox),
                settle=s.settle(sandbox),
            )
        )
    found = run_rounds(plan, warmup=0)
    section = _section(
        "Past one process: webhook ingestion behind HAProxy",
        f"wrk 50 connections through HAProxy (round robin, health-checked) POST up to "
        f"{EVENTS_PER_ROUND:,} distinct pre-signed events per round; each instance is one "
        "Hypercorn worker. Rows are counted afterwards.",
        stacks,
        found,
        "events/s",
    )
    for s in stacks:
        count_rounds(section, found[s.label], s.count, tags[s.label])
    lost = any("LOST" in n for n in section.notes)
    section.goals = [
        Goal(
            "zero lost on every backend and instance count", "lost" if lost else "0 lost", not lost
        )
    ]
    _add_scaling(section, stacks, found)
    return section


def _checkout_rounds(stacks: list[Stack], sandbox: Server) -> Section:
    plan = [
        Target(
            s.label,
            s.proxy.url + f"/checkout/{SLUG}",
            SHOPPERS,
            SECONDS,
            "checkout.lua",
            probe=s.probe(sandbox),
            settle=s.settle(sandbox),
        )
        for s in stacks
    ]
    found = run_rounds(plan)
    section = _section(
        "Past one process: checkout creation behind HAProxy",
        f"wrk {SHOPPERS} connections through HAProxy POST /checkout/{SLUG}; sandbox API latency "
        f"{LATENCY_MS} ± {LATENCY_JITTER_MS} ms, so the latency bound is "
        f"{SHOPPERS / (LATENCY_MS / 1000):.0f}/s. "
        "One sandbox process serves every configuration.",
        stacks,
        found,
        "checkouts/s",
    )
    _add_scaling(section, stacks, found)
    return section


def _section(
    title: str, setup: str, stacks: list[Stack], found: dict[str, Series], unit: str
) -> Section:
    section = Section(title, setup, list(found.values()), unit=unit)
    for s in stacks:
        shares = cpu_shares(found[s.label].cpu)
        section.notes.append(
            f"{s.label}: CPU, % of one core: "
            + ", ".join(f"{k} {v:.0f}" for k, v in shares.items())
            + f" (the machine has {CORES * 100}); {bottleneck(shares, len(s.instances), CORES)}"
        )
    return section


def _add_scaling(section: Section, stacks: list[Stack], found: dict[str, Series]) -> None:
    """Ratios to one PostgreSQL instance, and the scaling efficiency per instance."""
    one = stacks[1].label
    section.ratios.append(ratio(found, one, stacks[0].label))
    for s in stacks[2:]:
        n = len(s.instances)
        r = ratio(found, s.label, one)
        section.ratios.append(r)
        eff = measure.efficiency(found[s.label].values, found[one].values, n)
        section.notes.append(
            f"{s.label}: scaling efficiency {statistics.median(eff):.0%} per instance "
            f"(throughput ÷ ({n} x one instance's), median of rounds; "
            f"{min(eff):.0%}-{max(eff):.0%})"
        )


def cpu_shares(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Median over rounds of each group's CPU as a percentage of one core."""
    if not rounds:
        return {}
    shares: dict[str, list[float]] = {g: [] for g in GROUPS}
    for used in rounds:
        wall = used["wall"] or 1.0
        ours = sum(used[g] for g in GROUPS[:5])
        for g in GROUPS[:5]:
            shares[g].append(used[g] / wall * 100)
        shares[GROUPS[5]].append(max(used["machine"] - ours, 0.0) / wall * 100)
    return {g: statistics.median(v) for g, v in shares.items()}


def bottleneck(shares: dict[str, float], instances: int, cores: int) -> str:
    """Say in words where the limit sat, from CPU shares (% of one core)."""
    if not shares:
        return "no CPU figures"
    total = sum(shares.values())
    biggest = max(shares, key=lambda g: shares[g])
    if total >= 0.9 * cores * 100:
        return (
            f"the machine's CPU is the limit ({total:.0f} % of {cores * 100} % busy); "
            f"the largest share went to {biggest}"
        )
    per_shop = shares.get("shops", 0.0) / max(instances, 1)
    if per_shop >= 90:
        return f"each shop instance is at one core ({per_shop:.0f} %): the shops are the limit"
    for group in ("postgres", "haproxy", "sandbox", "wrk"):
        if shares.get(group, 0.0) >= 90:
            return f"{group} is at one core ({shares[group]:.0f} %): it is the limit"
    return (
        f"no process group is at one core and the machine is {total:.0f} % of "
        f"{cores * 100} % busy: the limit is waiting (latency, locks), not CPU"
    )
