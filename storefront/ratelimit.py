"""How many checkouts one client may start: a per-address limit kept in this process."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class CheckoutLimiter:
    """At most ``per_minute`` checkouts per client address in any 60 seconds (0: no limit).

    Every checkout creates a Checkout Session, and Stripe limits how many API
    calls an account may make; one client once started about 50 a second. The
    count lives in this process's memory (expired keys are dropped by the
    library), so each worker process counts on its own.

    A moving window: the library keeps the time of each allowed checkout (at
    most ``per_minute`` per address), so the limit holds over every 60-second
    span. Its sliding-window counter is only an estimate: it weighs the last
    clock minute's count by the share still inside the window, as if those
    checkouts were spread evenly, so N at the end of one minute let up to N
    more through early in the next.
    """

    def __init__(self, per_minute: int, *, proxy_hops: int = 0):
        self.per_minute = per_minute
        self.proxy_hops = proxy_hops
        self._item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage()) if self._item else None

    def client(self, remote_addr: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer's, or the one our own proxies recorded.

        Only the last ``proxy_hops`` entries of X-Forwarded-For were written by
        proxies we run; anything before them is whatever the client claimed.
        """
        if self.proxy_hops and forwarded_for:
            hops = [part.strip() for part in forwarded_for.split(",")]
            if len(hops) >= self.proxy_hops and hops[-self.proxy_hops]:
                return hops[-self.proxy_hops]
        return remote_addr or "unknown"

    def hit(self, client: str) -> int | None:
        """Count one checkout by ``client``; None if allowed, else seconds to wait."""
        if self._item is None or self._limiter is None:
            return None
        if self._limiter.hit(self._item, "checkout", client):
            return None
        # When the oldest checkout in the window leaves it, and a place is free again.
        reset_at = self._limiter.get_window_stats(self._item, "checkout", client).reset_time
        return max(1, math.ceil(reset_at - time.time()))
