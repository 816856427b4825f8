"""The checkout limit holds over every 60 seconds, not per clock minute: on a test clock."""

from __future__ import annotations

import math
from dataclasses import dataclass

import limits.storage.memory
import limits.strategies
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import storefront.ratelimit
from storefront.ratelimit import CheckoutLimiter

# A whole number of minutes since the epoch: clock minutes start at MINUTE + 60 * k.
MINUTE = 30_000_000 * 60.0


@dataclass
class Clock:
    """Stands in for the ``time`` module where the limiter and its library read the time."""

    now: float = MINUTE

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A clock the test moves by hand; no test waits for a real minute to turn."""
    clock = Clock()
    # raising=True (the default): if the library stops reading time this way, this fails.
    for module in (limits.storage.memory, limits.strategies, storefront.ratelimit):
        monkeypatch.setattr(module, "time", clock)
    return clock


def test_a_full_window_at_the_end_of_a_minute_lets_none_through_early_in_the_next(
    clock: Clock,
) -> None:
    limiter = CheckoutLimiter(10)
    clock.now = MINUTE + 59.5
    assert [limiter.hit("203.0.113.1") for _ in range(10)] == [None] * 10
    # One second later the clock minute has turned, but all ten are within 60 s:
    # an estimate that weighs the last minute by what is left of it lets an 11th through.
    clock.now = MINUTE + 60.5
    assert limiter.hit("203.0.113.1") == 59
    clock.now = MINUTE + 119.4
    assert limiter.hit("203.0.113.1") == 1
    # Sixty seconds after the ten, the window has room again, for ten more.
    clock.now = MINUTE + 119.6
    assert [limiter.hit("203.0.113.1") for _ in range(11)] == [None] * 10 + [60]
    # Another address was never limited by any of it.
    assert limiter.hit("203.0.113.2") is None


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    per_minute=st.integers(1, 6),
    # Steps of 7 ms between checkouts from one address: bursts, pauses, over a minute.
    # They never add up to exactly 60 s, the one instant where the library counts a
    # checkout as still in the window for the limit but already gone for Retry-After.
    gaps=st.lists(st.integers(0, 10_000), min_size=1, max_size=60),
)
def test_never_more_than_the_limit_in_any_60_seconds_and_retry_after_says_when(
    clock: Clock, per_minute: int, gaps: list[int]
) -> None:
    limiter = CheckoutLimiter(per_minute)
    allowed: list[float] = []
    for gap in gaps:
        clock.now += gap * 0.007
        # What "at most N in any 60 seconds" allows: fewer than N in [now - 60, now].
        in_window = [t for t in allowed if t >= clock.now - 60]
        wait = limiter.hit("198.51.100.7")
        if len(in_window) < per_minute:
            assert wait is None, (clock.now, in_window)
            allowed.append(clock.now)
        else:
            # Retry-After: until the oldest of the window leaves it, in whole seconds.
            assert wait == max(1, math.ceil(min(in_window) + 60 - clock.now))
