"""The sandbox's clock: real time plus an offset that tests can advance (a test clock)."""

from __future__ import annotations

import asyncio
import contextlib
import time


class SandboxClock:
    """Sandbox time; ``advance`` moves it forward and wakes whatever waits for it."""

    def __init__(self) -> None:
        self.offset = 0.0
        # Replaced on every advance, so each sleeper waits on the event of its own era.
        self._moved = asyncio.Event()
        # Tasks sleeping in sandbox time, with the sandbox time they wake at.
        self._sleepers: dict[asyncio.Task[object], float] = {}

    def now(self) -> float:
        """Sandbox time in (fractional) Unix seconds."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        """Move sandbox time forward by ``seconds``; return the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        return self.now()

    async def sleep(self, seconds: float) -> None:
        """Sleep until sandbox time has moved ``seconds`` on, by real time or by advances."""
        due = self.now() + seconds
        task = asyncio.current_task()
        if task is not None:
            self._sleepers[task] = due
        try:
            while (left := due - self.now()) > 0:
                moved = self._moved
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(moved.wait(), timeout=left)
        finally:
            if task is not None:
                self._sleepers.pop(task, None)

    def due_sleepers(self) -> list[asyncio.Task[object]]:
        """Sleeping tasks whose wake-up time has come (e.g. right after an advance)."""
        now = self.now()
        return [task for task, due in self._sleepers.items() if due <= now]
