"""Interleaved rounds of wrk runs, and the figures kept from them."""

from __future__ import annotations

import math
import statistics
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.wrk import WrkResult, wrk

ROUNDS = 3
# Every wrk run and warm-up lasts its target's duration times this (run.py --time-scale):
# smoke runs shorten everything at once without touching the scenarios.
TIME_SCALE = 1.0


@dataclass
class Target:
    """One thing to load: a label for the table, a URL, and how wrk should load it."""

    label: str
    url: str
    connections: int
    duration: float = 8.0
    script: str | None = None
    args: list[str] | None = None
    # Called before each round, e.g. to write freshly signed events; returns wrk args.
    prepare: Callable[[int], list[str]] | None = None
    # Read before and after each round's run (e.g. CPU seconds per process group);
    # the differences are kept with the round, beside wrk's own CPU and the wall time.
    probe: Callable[[], dict[str, float]] | None = None
    # Called before each run: e.g. wait until work left over from the run before drained.
    settle: Callable[[], None] | None = None
    # A path on this target's server that must answer a GET with 2xx before the
    # first round; without one, a target loaded without a script checks its own URL.
    check: str | None = None


class BrokenTarget(RuntimeError):
    """A server answered the pre-round check with an error: its figures would mean nothing."""


def expect_2xx(label: str, url: str) -> None:
    """GET one request the way the load will, and fail loudly unless it answers 2xx.

    A baseline that answers every request with an error would otherwise show
    up only as "unknown" ratios at the end of a long run.
    """
    try:
        with urllib.request.urlopen(url, timeout=10):
            return
    except urllib.error.HTTPError as error:
        body = error.read(300).decode("utf-8", "replace")
        raise BrokenTarget(
            f"{label}: GET {url} answered {error.code}, not 2xx; "
            f"fix the server before measuring it. Body: {body!r}"
        ) from None


class _Figures:
    """The median and min-max of a list of per-round values."""

    values: list[float]

    @property
    def median(self) -> float:
        if any(math.isnan(v) for v in self.values):
            return math.nan
        return statistics.median(self.values)

    @property
    def spread(self) -> tuple[float, float]:
        known = [v for v in self.values if not math.isnan(v)] or [math.nan]
        return min(known), max(known)


@dataclass
class Series(_Figures):
    """Every round's result for one target."""

    label: str
    results: list[WrkResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # the figure compared (req/s by default)
    cpu: list[dict[str, float]] = field(default_factory=list)  # per round, with a probe

    @property
    def p99(self) -> float:
        # A round that answered nothing has no latency to show: never a good one.
        return statistics.median(r.p99 if r.requests else math.inf for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.socket_errors + r.timeouts + r.non_2xx_3xx for r in self.results)


def run_rounds(
    targets: Sequence[Target], rounds: int | None = None, warmup: float = 1.0
) -> dict[str, Series]:
    """Warm each target up, then run every target once per round, round after round.

    Interleaving puts ours and its baseline next to each other in time, so a
    noisy spell on the machine hits both, and their per-round ratio stays fair.
    """
    rounds = rounds or ROUNDS
    series = {t.label: Series(t.label) for t in targets}
    for target in targets:
        if target.check is not None:
            expect_2xx(target.label, target.url.rstrip("/") + target.check)
        elif target.script is None:
            expect_2xx(target.label, target.url)
    for target in targets:
        if warmup and target.prepare is None:
            wrk(target.url, connections=target.connections, duration=warmup * TIME_SCALE,
                script=target.script, args=target.args)  # fmt: skip
    for round_no in range(rounds):
        for target in targets:
            args = target.prepare(round_no) if target.prepare else target.args
            if target.settle:
                target.settle()
            before = target.probe() if target.probe else {}
            result = wrk(
                target.url,
                connections=target.connections,
                duration=target.duration * TIME_SCALE,
                script=target.script,
                args=args,
            )
            entry = series[target.label]
            entry.results.append(result)
            if target.probe:
                after = target.probe()
                used = {k: after[k] - before[k] for k in after}
                entry.cpu.append(used | {"wrk": result.cpu_seconds, "wall": result.wall_seconds})
            # Only answers that worked count: a server failing fast must not look fast.
            ok = max(result.requests - result.non_2xx_3xx, 0)
            entry.values.append(result.rps * ok / max(result.requests, 1))
    return series


@dataclass
class Ratio(_Figures):
    """Ours against a baseline, round by round."""

    ours: str
    baseline: str
    values: list[float]
    goal: float | None = None

    @property
    def known(self) -> bool:
        """False if a baseline answered nothing in some round (that ratio is unknown)."""
        return not any(math.isnan(v) for v in self.values)

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.known and self.median >= self.goal


def ratio(series: dict[str, Series], ours: str, baseline: str, goal: float | None = None) -> Ratio:
    """Per-round ratios of two series measured in the same rounds."""
    pairs = zip(series[ours].values, series[baseline].values, strict=True)
    return Ratio(ours, baseline, [_divide(a, b) for a, b in pairs], goal)


def ratio_to_best(
    series: dict[str, Series], ours: str, baselines: Sequence[str], goal: float | None = None
) -> Ratio:
    """Per-round ratios of ours to the fastest of several baselines in that same round.

    "≥ 2x Flask" is then met only against whichever way of running Flask did
    best in each round, never against its weaker setup.
    """
    rounds = zip(*(series[b].values for b in baselines), strict=True)
    best = [max(values) for values in rounds]
    pairs = zip(series[ours].values, best, strict=True)
    name = "the faster of " + " and ".join(baselines) if len(baselines) > 1 else baselines[0]
    return Ratio(ours, name, [_divide(a, b) for a, b in pairs], goal)


def _divide(a: float, b: float) -> float:
    # A baseline that answered nothing in a round leaves that round's ratio unknown.
    return a / b if b else math.nan


def efficiency(
    per_instance: Sequence[float], single: Sequence[float], instances: int
) -> list[float]:
    """Scaling efficiency per round: throughput with n instances ÷ (n x one instance's)."""
    pairs = zip(per_instance, single, strict=True)
    return [a / (instances * b) if b else 0.0 for a, b in pairs]


@dataclass
class Goal:
    """One goal from the issue: what was measured against what was asked."""

    text: str
    measured: str
    met: bool
    shortfall: str = ""


def goal_at_least(text: str, value: float, target: float, unit: str = "") -> Goal:
    """A "≥ target" goal; the shortfall says by how much it was missed."""
    met = value >= target
    short = "" if met else f"missed by {target - value:,.2f}{unit} ({1 - value / target:.0%})"
    return Goal(text, f"{value:,.2f}{unit}", met, short)


def ratio_goal(r: Ratio, text: str) -> Goal:
    """The goal a ratio carries, as a row of the goals table."""
    if r.goal is None:
        raise ValueError(f"{r.ours} ÷ {r.baseline} carries no goal")
    if not r.known:
        return Goal(text, "unknown", False, "the baseline answered nothing in a round")
    return goal_at_least(text, r.median, r.goal, "x")


def goal_at_most(text: str, value: float, target: float, unit: str = "") -> Goal:
    """A "≤ target" goal; the shortfall says by how much it was exceeded."""
    if math.isinf(value):
        return Goal(text, "no answers", False, "nothing was answered in a round")
    met = value <= target
    over = "" if met else f"over by {value - target:,.2f}{unit} ({value / target - 1:.0%})"
    return Goal(text, f"{value:,.2f}{unit}", met, over)
