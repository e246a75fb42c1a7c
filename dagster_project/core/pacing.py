"""How fast the push goes and how it says so: the client-side rate limit, how much of it a push
used, and progress lines paced by time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster_project.core.push_types import PushReport

# Seconds between progress lines of a long push (each line is an event Dagster stores).
PROGRESS_SECONDS = 30.0


def rate_limit_busy(requests: int, sending_seconds: float, limit: float) -> float | None:
    """Share of the rate limit's request slots used while sending (None without a limit).

    The limiter lets the first request go at once and spaces the others ``1 / limit`` apart,
    so a push that never leaves a slot unused takes ``(requests - 1) / limit`` seconds plus the
    last response: that is 100 %.
    """
    if not limit or requests < 2 or sending_seconds <= 0:
        return None
    return (requests - 1) / (sending_seconds * limit)


class RateLimiter:
    """Spaces request starts at least ``1 / per_second`` apart, across threads."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class Progress:
    """'chunk n/total done' lines: the last chunk's, and others at most every ``every`` seconds.

    Time, not a share of the chunks, sets the pace: a rate-limited push of hours still shows a
    line every half minute, and a push of seconds adds no more than its final line to the run's
    event log (each line is an event Dagster stores).
    """

    def __init__(
        self,
        total: int,
        report: PushReport,
        log: Callable[[str], None],
        every: float = PROGRESS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.report, self.log, self.every, self.clock = total, report, log, every, clock
        self._last = clock()
        self._lock = threading.Lock()

    def __call__(self, done: int) -> None:
        with self._lock:
            now = self.clock()
            if done != self.total and now - self._last < self.every:
                return
            self._last = now
        self.log(
            f"chunk {done}/{self.total} done: {self.report.tokens_pushed:,}/"
            f"{self.report.tokens_pending:,} tokens accepted"
        )
