"""Interleaved rounds of wrk runs, and the figures kept from them."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.wrk import WrkResult, wrk

ROUNDS = 3


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


class _Figures:
    """The median and min-max of a list of per-round values."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.values), max(self.values)


@dataclass
class Series(_Figures):
    """Every round's result for one target."""

    label: str
    results: list[WrkResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # the figure compared (req/s by default)

    @property
    def p99(self) -> float:
        return statistics.median(r.p99 for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.socket_errors + r.timeouts + r.non_2xx_3xx for r in self.results)


def run_rounds(
    targets: Sequence[Target], rounds: int | None = None, warmup: float = 2.0
) -> dict[str, Series]:
    """Warm each target up, then run every target once per round, round after round.

    Interleaving puts ours and its baseline next to each other in time, so a
    noisy spell on the machine hits both, and their per-round ratio stays fair.
    """
    rounds = rounds or ROUNDS
    series = {t.label: Series(t.label) for t in targets}
    for target in targets:
        if warmup and target.prepare is None:
            wrk(target.url, connections=target.connections, duration=warmup, script=target.script,
                args=target.args)  # fmt: skip
    for round_no in range(rounds):
        for target in targets:
            args = target.prepare(round_no) if target.prepare else target.args
            result = wrk(
                target.url,
                connections=target.connections,
                duration=target.duration,
                script=target.script,
                args=args,
            )
            entry = series[target.label]
            entry.results.append(result)
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
    def met(self) -> bool | None:
        return None if self.goal is None else self.median >= self.goal


def ratio(series: dict[str, Series], ours: str, baseline: str, goal: float | None = None) -> Ratio:
    """Per-round ratios of two series measured in the same rounds."""
    pairs = zip(series[ours].values, series[baseline].values, strict=True)
    return Ratio(ours, baseline, [a / b if b else float("inf") for a, b in pairs], goal)


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


def goal_at_most(text: str, value: float, target: float, unit: str = "") -> Goal:
    """A "≤ target" goal; the shortfall says by how much it was exceeded."""
    met = value <= target
    over = "" if met else f"over by {value - target:,.2f}{unit} ({value / target - 1:.0%})"
    return Goal(text, f"{value:,.2f}{unit}", met, over)
