"""Run every benchmark scenario and write bench/RESULTS.md: `python -m bench.run`."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from bench import ingest, measure, procs, scaleout, scenarios
from bench.measure import goal_at_most
from bench.report import render
from bench.scenarios import Section

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
MEMORY_GOAL_MB = 150.0


def _scenarios() -> dict[str, Callable[[], list[Section]]]:
    from bench.browser import browser

    return {
        "checkout": scenarios.checkout,
        "catalog": lambda: [scenarios.catalog()],
        "webhooks": lambda: [ingest.webhooks()],
        "polling": lambda: [ingest.polling()],
        "browser": lambda: [browser()],
        "scaleout": scaleout.scaleout,
    }


def _stop(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so the `finally` blocks stop every server.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios (all by default) and write the report."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--rounds", type=int, default=measure.ROUNDS, help="rounds per scenario")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the report")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every load's duration (e.g. 0.3 for a smoke run)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.time_scale <= 10 or args.rounds < 1:
        parser.error("--time-scale must be in (0, 10] and --rounds at least 1")
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    measure.ROUNDS = args.rounds
    measure.TIME_SCALE = args.time_scale
    signal.signal(signal.SIGTERM, _stop)
    chosen = _scenarios()
    names = args.only or list(chosen)
    unknown = [n for n in names if n not in chosen]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(chosen)}")
    started = time.monotonic()
    sections: list[Section] = []
    durations: dict[str, float] = {}
    try:
        for name in names:
            print(f"bench: {name} …", flush=True)
            began = time.monotonic()
            sections += chosen[name]()
            durations[name] = time.monotonic() - began
            print(f"bench: {name} done in {durations[name]:.0f} s", flush=True)
    except measure.BrokenTarget as error:
        # No report: a table of ratios against a server that only errs would mislead.
        print(f"bench: FAILED, a server answers errors: {error}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
    ours = {k: v for s in sections for k, v in s.memory_mb.items() if k.startswith("ours:")}
    # Only scenarios that read a worker's memory (a run of --only browser reads none).
    memory = (
        goal_at_most(
            f"RSS of one worker after the loads < {MEMORY_GOAL_MB:g} MB",
            max(ours.values()),
            MEMORY_GOAL_MB,
            " MB",
        )
        if ours
        else None
    )
    command = "make bench" if not argv and len(sys.argv) == 1 else " ".join(sys.argv)
    report = render(sections, memory, time.monotonic() - started, command, durations)
    args.output.write_text(report, encoding="utf-8")
    print(report)
    print(f"bench: wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
