"""What one run reads from the warehouse: every subscriber, a range of subscription dates, or
(when the state lives in another database) the rows changed since the last run.

The ledger decides what is new, so reading more than needed only costs time, never a second
push; reading less can delay a push. A run therefore reads everything unless it is told to
narrow (run config) or copying everything across databases would be the cost (change cursor).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

# Bounds that every warehouse compares correctly and no subscription falls outside of.
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(9999, 12, 31)

FULL = "full"
RANGE = "range"
CHANGES = "changes"


class ScopeError(ValueError):
    """Run config that names no usable range; the message names the field."""


@dataclass(frozen=True)
class Scope:
    """``[window_start, window_end)`` on ``subscribed_at``, and, for a change run, the moment
    from which a row counts as changed (any of its change timestamps at or after it)."""

    kind: str
    window_start: datetime = EARLIEST
    window_end: datetime = LATEST
    changed_since: datetime | None = None

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.window_start, self.window_end

    def describe(self) -> str:
        if self.kind == RANGE:
            last_day = (self.window_end - timedelta(days=1)).date()
            return f"subscribers of {self.window_start:%Y-%m-%d} .. {last_day:%Y-%m-%d}"
        if self.kind == CHANGES:
            return f"subscribers changed since {self.changed_since:%Y-%m-%d %H:%M} UTC"
        return "every subscriber"


def _day(field: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ScopeError(f"{field}={value!r} is not a date (YYYY-MM-DD)") from None


def plan_scope(
    subscribed_from: str | None,
    subscribed_to: str | None,
    full_scan: bool,
    separate_state: bool,
    last_full_at: datetime | None,
    last_success_at: datetime | None,
    overlap: timedelta,
    full_every: timedelta,
    now: datetime,
) -> Scope:
    """The scope of one run.

    - A date range in the run config wins (``subscribed_to`` inclusive): a targeted backfill.
    - With the state in the warehouse's own database, every run reads everything: the diff
      against the ledger is one set-based statement there.
    - With a separate state database, a run reads the rows changed since the last successful
      run's start, less ``overlap``; it reads everything when asked (``full_scan``), when there
      is no earlier run to follow, or when the last full read is older than ``full_every``.
    """
    if subscribed_from or subscribed_to:
        start = _day("subscribed_from", subscribed_from) if subscribed_from else EARLIEST.date()
        end = _day("subscribed_to", subscribed_to) if subscribed_to else None
        if end is not None and end < start:
            raise ScopeError(f"subscribed_to={end} is before subscribed_from={start}")
        window_end = (
            datetime.combine(end + timedelta(days=1), datetime.min.time()) if end else LATEST
        )
        return Scope(RANGE, datetime.combine(start, datetime.min.time()), window_end)
    if full_scan or not separate_state or last_success_at is None or last_full_at is None:
        return Scope(FULL)
    if now - last_full_at >= full_every:
        return Scope(FULL)
    return Scope(CHANGES, changed_since=last_success_at - overlap)
