"""A Great Expectations suite over the raw extract: the rows as the warehouse handed them over,
before any normalization.

The payload suite checks what the sync's own code produced; this one watches the CRM and the bot
for drift the rules would absorb quietly: chat ids going missing, a status nobody told the sync
about (refused row by row as ``unknown_status``), phones or emails dropping out of the join. It
reads the rows validation works on (not pushed yet, not refused before and unchanged), each
reduced to what the expectations need, so the suite never holds a phone number or an email and
its memory is a few bytes a row. With no such rows Great Expectations is never imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dagster_project.core.batch import KNOWN_STATUSES, status_key
from dagster_project.core.expectations import Expectation, SuiteOutcome, SuiteRunner

RAW_SUITE_NAME = "subscriber_extract_raw"
NO_ROWS = pd.DataFrame(columns=["chat_id", "status", "crm_phone", "bot_phone", "crm_email"])


@dataclass(frozen=True)
class RawBounds:
    """Shares of the checked rows that must carry a phone (the CRM's or the one shared with
    the bot) and an email (the CRM's); below them the CRM has drifted."""

    min_phone_share: float
    min_email_share: float


@dataclass(frozen=True)
class RawCheck:
    rows: int
    outcome: SuiteOutcome
    bounds: RawBounds
    seconds: float = 0.0


def raw_expectations(bounds: RawBounds) -> tuple[Expectation, ...]:
    return (
        ("ExpectColumnValuesToNotBeNull", {"column": "chat_id"}),
        (
            "ExpectColumnValuesToBeInSet",
            {"column": "status", "value_set": list(KNOWN_STATUSES)},
        ),
        ("ExpectColumnValuesToNotBeNull", {"column": "phone", "mostly": bounds.min_phone_share}),
        ("ExpectColumnValuesToNotBeNull", {"column": "email", "mostly": bounds.min_email_share}),
    )


def _present(values: pd.Series) -> pd.Series:
    """True where a value is there (blank text counts as none), missing elsewhere."""
    text = values.astype("string")
    has = text.notna() & text.str.strip().ne("")
    return pd.Series(True, index=values.index, dtype="boolean").where(has)


def raw_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """What the suite reads of staged extract rows: whether there is a chat id, the status as
    the rules read it, whether there is a phone and an email; no identifier itself."""
    return pd.DataFrame(
        {
            "chat_id": pd.Series(True, index=raw.index, dtype="boolean").where(
                raw["chat_id"].notna()
            ),
            "status": status_key(raw["status"]).astype("category"),
            "phone": _present(raw["crm_phone"]).fillna(_present(raw["bot_phone"])),
            "email": _present(raw["crm_email"]),
        }
    )


def check_raw_frame(frame: pd.DataFrame, bounds: RawBounds) -> RawCheck:
    """The suite over frames of ``raw_frame``; an empty one passes without GX."""
    runner = SuiteRunner(RAW_SUITE_NAME, raw_expectations(bounds), sample_rows=100)
    return RawCheck(rows=len(frame), outcome=runner.validate(frame), bounds=bounds)
