"""eSputnik message statuses: row checks, event keys and the daily delivery figures.

Pure pandas; the SQL that applies events to the ledger lives in sql/apply_message_events.sql.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

STATUSES = ("SENT", "FAILED", "CLICKED")
FORBIDDEN = "forbidden"
EVENT_COLUMNS = ("token", "message_id", "status", "reason", "occurred_at")
KEY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # UTC, always with microseconds
FUTURE = "future"


@dataclass(frozen=True)
class CheckedEvents:
    good: pd.DataFrame  # event_key + EVENT_COLUMNS, status upper-cased, occurred_at UTC-naive
    bad: pd.DataFrame  # event_key + EVENT_COLUMNS + rejection

    def keys(self) -> pd.Series:
        return pd.concat([self.good["event_key"], self.bad["event_key"]], ignore_index=True)


def _text(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip()


def _instants(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce", format="mixed")


def event_keys(events: pd.DataFrame) -> pd.Series:
    """A stable key per event row: message, token, status and the time in one canonical form.

    The time is UTC with microseconds whatever the driver returned (PostgreSQL datetimes, SQLite
    text with or without fractions, offsets), so the same event keeps its key on every read. A
    time that does not parse keeps its trimmed text, marked, so it never equals a real one.
    """
    parts = [_text(events[c]).fillna("") for c in ("message_id", "token", "status")]
    instants = _instants(events["occurred_at"])
    raw = _text(events["occurred_at"])
    when = instants.dt.strftime(KEY_TIME_FORMAT).astype("string")
    when = when.where(instants.notna(), ("raw:" + raw).where(raw.notna() & (raw != ""), ""))
    return (parts[0] + "|" + parts[1] + "|" + parts[2].str.upper() + "|" + when).astype(object)


def key_time(key: str) -> str:
    """The canonical time part of an event key ('' for an event without a time)."""
    return key.rsplit("|", 1)[-1]


KEY_MEMORY = pd.Timedelta(days=1)  # beyond any disorder of offsets or formats in the source


def forget_keys_before(handled: set[str], latest_keys: pd.Series) -> set[str]:
    """``handled`` without keys timed over a day before the earliest of ``latest_keys``.

    Events are read oldest first and a key holds its time, so a repeat can only come with the
    same time: a long first ingest keeps a day of keys in memory, not the whole table's.
    """
    times = pd.to_datetime(latest_keys.map(key_time), errors="coerce", format=KEY_TIME_FORMAT)
    if times.isna().all():
        return handled
    cutoff = (times.min() - KEY_MEMORY).strftime(KEY_TIME_FORMAT)
    return {
        key for key in handled if not ("0" <= key_time(key)[:1] <= "9") or key_time(key) >= cutoff
    }


def check_events(events: pd.DataFrame, latest: datetime | None = None) -> CheckedEvents:
    """Split events into usable ones and ones set aside with a reason; never raises on data.

    An event dated after ``latest`` (now plus a small tolerance, naive UTC) is refused: one row
    dated 2099 would otherwise carry the cursor past every real event to come.
    """
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(
            f"message events lack columns {missing}; see sql/message_events_schema.sql"
        )
    frame = events[list(EVENT_COLUMNS)].copy()
    frame.insert(0, "event_key", event_keys(frame))
    token, message = _text(frame["token"]), _text(frame["message_id"])
    status = _text(frame["status"]).str.upper()
    occurred = _instants(frame["occurred_at"])

    rejection = pd.Series(pd.NA, index=frame.index, dtype="string")
    rejection[occurred.isna()] = "malformed: occurred_at missing or not a timestamp"
    rejection[message.isna() | (message == "")] = "malformed: message_id missing"
    rejection[token.isna() | (token == "")] = "malformed: token missing"
    if latest is not None:
        future = rejection.isna() & (occurred.dt.tz_localize(None) > latest).fillna(False)
        rejection[future] = f"{FUTURE}: occurred_at after {latest:%Y-%m-%d %H:%M} UTC"
    unknown = rejection.isna() & ~status.isin(STATUSES).fillna(False)
    rejection[unknown] = "unknown_status: " + frame.loc[unknown, "status"].astype("string").fillna(
        ""
    )

    bad = frame[rejection.notna()].assign(rejection=rejection[rejection.notna()])
    good = frame[rejection.isna()].assign(
        token=token[rejection.isna()],
        message_id=message[rejection.isna()],
        status=status[rejection.isna()],
        reason=_text(frame["reason"])[rejection.isna()],
        occurred_at=occurred[rejection.isna()].dt.tz_localize(None),
    )
    bad = bad.assign(occurred_at=occurred[bad.index].dt.tz_localize(None))
    return CheckedEvents(good.reset_index(drop=True), bad.reset_index(drop=True))


def daily_delivery(counts: pd.DataFrame) -> pd.DataFrame:
    """Per-day figures from (day, status, reason, events) rows.

    click_rate = clicked / sent; blocked_rate = failed with reason Forbidden / sent (the share of
    messages that found the bot blocked).
    """
    columns = ["day", "sent", "failed", "failed_forbidden", "clicked", "click_rate", "blocked_rate"]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    counts = counts.assign(
        day=counts["day"].astype(str).str.slice(0, 10),
        forbidden=counts["reason"].astype("string").str.lower().eq(FORBIDDEN).fillna(False),
    )

    def total(mask: pd.Series) -> pd.Series:
        return counts[mask].groupby("day")["events"].sum()

    daily = pd.DataFrame(index=sorted(counts["day"].unique()))
    daily["sent"] = total(counts["status"] == "SENT")
    daily["failed"] = total(counts["status"] == "FAILED")
    daily["failed_forbidden"] = total((counts["status"] == "FAILED") & counts["forbidden"])
    daily["clicked"] = total(counts["status"] == "CLICKED")
    daily = daily.fillna(0).astype("int64")
    sent = daily["sent"].where(daily["sent"] > 0)
    daily["click_rate"] = (daily["clicked"] / sent).round(4)
    daily["blocked_rate"] = (daily["failed_forbidden"] / sent).round(4)
    return daily.rename_axis("day").reset_index()[columns]


def blocked_rate_jump(
    daily: pd.DataFrame, multiple: float, floor: float, trailing_days: int = 7
) -> tuple[bool, str, dict[str, float]]:
    """Whether the latest day's blocked rate jumped above ``multiple`` x the trailing average.

    Rates under ``floor`` never count as a jump: a few blocks on a quiet day are noise.
    """
    rates = daily.dropna(subset=["blocked_rate"])
    if rates.empty:
        return True, "no day with sent messages yet", {}
    latest = rates.iloc[-1]
    previous = rates.iloc[-1 - trailing_days : -1]["blocked_rate"]
    baseline = float(previous.mean()) if len(previous) else None
    rate = float(latest["blocked_rate"])
    metadata = {"blocked_rate": rate, "trailing_average": round(baseline, 4) if baseline else -1.0}
    if baseline is None:
        return True, f"{latest['day']}: blocked rate {rate:.2%}, no earlier days", metadata
    jumped = rate >= floor and rate > multiple * baseline
    verdict = "jumped above" if jumped else "within"
    return (
        not jumped,
        f"{latest['day']}: blocked rate {rate:.2%} {verdict} {multiple:g}x the {len(previous)}-day "
        f"average {baseline:.2%}",
        metadata,
    )
