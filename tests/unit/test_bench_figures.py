"""The benchmark's arithmetic: ratios in the same rounds, goals, scaling, CPU shares."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.carts import RaceRound, p99, race_goals
from bench.measure import (
    BrokenTarget,
    Series,
    efficiency,
    expect_2xx,
    goal_at_most,
    ratio,
    ratio_goal,
    ratio_to_best,
)
from bench.scaleout import bottleneck, cpu_shares


def _series(**values: list[float]) -> dict[str, Series]:
    return {name: Series(name, values=v) for name, v in values.items()}


def test_ratio_to_best_divides_by_the_faster_baseline_of_each_round() -> None:
    found = _series(
        ours=[300.0, 200.0, 400.0], sync=[100.0, 200.0, 50.0], gthread=[150.0, 50.0, 100.0]
    )

    r = ratio_to_best(found, "ours", ["sync", "gthread"], goal=2.0)

    assert r.values == [2.0, 1.0, 4.0]
    assert r.median == 2.0
    assert r.met is True
    assert r.baseline == "the faster of sync and gthread"


def test_ratio_goal_reports_the_shortfall_of_a_missed_ratio() -> None:
    found = _series(ours=[120.0], flask=[100.0])

    goal = ratio_goal(ratio(found, "ours", "flask", 1.5), "≥ 1.5x Flask")

    assert goal.met is False
    assert goal.measured == "1.20x"
    assert goal.shortfall == "missed by 0.30x (20%)"


def test_ratio_goal_refuses_a_ratio_without_a_goal() -> None:
    with pytest.raises(ValueError, match="carries no goal"):
        ratio_goal(ratio(_series(a=[1.0], b=[1.0]), "a", "b"), "anything")


def test_memory_share_goal_is_met_at_or_below_half() -> None:
    assert goal_at_most("≤ ½ of Flask's", 0.5, 0.5, "x").met is True
    over = goal_at_most("≤ ½ of Flask's", 0.6, 0.5, "x")
    assert over.met is False
    assert over.shortfall == "over by 0.10x (20%)"


def test_efficiency_is_throughput_over_n_times_one_instance() -> None:
    assert efficiency([300.0, 150.0], [100.0, 100.0], 3) == [1.0, 0.5]
    assert efficiency([10.0], [0.0], 2) == [0.0]


def test_cpu_shares_are_percent_of_one_core_and_the_rest_is_other_work() -> None:
    rounds = [
        {"shops": 2.0, "postgres": 1.0, "haproxy": 0.5, "sandbox": 0.0, "wrk": 0.5,
         "machine": 5.0, "wall": 2.5},
    ]  # fmt: skip

    shares = cpu_shares(rounds)

    assert shares == {
        "shops": 80.0,
        "postgres": 40.0,
        "haproxy": 20.0,
        "sandbox": 0.0,
        "wrk": 20.0,
        "rest of the machine": 40.0,
    }


def test_bottleneck_names_a_saturated_machine_and_its_biggest_user() -> None:
    shares = {"shops": 120.0, "postgres": 40.0, "haproxy": 10.0, "wrk": 20.0}

    said = bottleneck(shares, instances=2, cores=2)

    assert "machine's CPU is the limit" in said
    assert "shops" in said


def test_bottleneck_names_one_instance_at_one_core() -> None:
    said = bottleneck({"shops": 97.0, "postgres": 20.0, "wrk": 15.0}, instances=1, cores=4)

    assert "shops are the limit" in said


def test_bottleneck_says_when_nothing_is_at_one_core() -> None:
    said = bottleneck({"shops": 50.0, "postgres": 10.0}, instances=2, cores=4)

    assert "waiting" in said


def test_p99_is_the_nearest_rank() -> None:
    assert p99([float(x) for x in range(1, 101)]) == 99.0
    assert p99([5.0]) == 5.0


def test_race_goals_need_exactly_the_stock_to_win_every_round() -> None:
    good = RaceRound(won=5, sold_out=95, other=0, reserved=5, p99_ms=400.0)
    greedy = RaceRound(won=6, sold_out=94, other=0, reserved=6, p99_ms=1200.0)

    _, goals = race_goals("ours", [good], 5, 1000.0)
    assert [g.met for g in goals] == [True, True]

    series, goals = race_goals("ours", [good, greedy], 5, 1000.0)
    assert [g.met for g in goals] == [False, False]
    assert series.values == [400.0, 1200.0]


def test_a_baseline_that_answered_nothing_leaves_the_ratio_unknown_and_the_goal_missed() -> None:
    found = _series(ours=[300.0, 280.0], flask=[0.0, 100.0])

    r = ratio(found, "ours", "flask", 1.5)

    assert r.known is False
    assert r.met is False
    assert r.spread == (2.8, 2.8)
    goal = ratio_goal(r, "≥ 1.5x Flask")
    assert (goal.measured, goal.met) == ("unknown", False)


def test_a_latency_goal_is_missed_when_nothing_was_answered() -> None:
    goal = goal_at_most("p99 < 100 ms", math.inf, 100.0, " ms")

    assert (goal.measured, goal.met) == ("no answers", False)


class _Answers(BaseHTTPRequestHandler):
    """Answers GET /<status> with that status."""

    def do_GET(self) -> None:
        status = int(self.path.strip("/"))
        self.send_response(status)
        self.send_header("Content-Length", "5" if status != 204 else "0")
        self.end_headers()
        if status != 204:
            self.wfile.write(b"oops!")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_answering_errors_stops_the_run_before_its_rounds(answering: str) -> None:
    with pytest.raises(BrokenTarget, match=r"baseline: GET .*/500 answered 500.*oops!"):
        expect_2xx("baseline", answering + "/500")


@pytest.mark.parametrize("status", [200, 204])
def test_a_server_answering_2xx_passes_the_check(answering: str, status: int) -> None:
    expect_2xx("ours", f"{answering}/{status}")
