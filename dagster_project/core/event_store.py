"""Message events in the state database: the cursor, the ingests, what was applied or refused,
the delivery figures per day, and the retention purge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, text

from dagster_project.core.db import (
    append_frame,
    db_timestamp,
    load_sql,
    split_statements,
    utc_now,
)
from dagster_project.core.staging import delete_batch


def events_cursor(engine: Engine, app_uuid: str, latest: datetime) -> datetime | None:
    """Latest occurred_at already handled for the app, no later than ``latest`` (now plus the
    tolerance): derived, so it can never drift, and a future-dated row cannot move it."""
    params = {"app_uuid": app_uuid, "latest": db_timestamp(engine, latest)}
    with engine.connect() as conn:
        value = conn.execute(text(load_sql("events_cursor.sql")), params).scalar()
    if value is None:
        return None
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


@dataclass(frozen=True)
class EventsIngest:
    """What the previous ingest left for the next: where to read from, and the source's counts
    then."""

    next_from: datetime
    rows_before_next_from: int
    undated_rows: int


def last_events_ingest(engine: Engine, app_uuid: str) -> EventsIngest | None:
    with engine.connect() as conn:
        row = conn.execute(text(load_sql("last_events_ingest.sql")), {"app_uuid": app_uuid}).first()
    if row is None:
        return None
    next_from = pd.Timestamp(row.next_from).to_pydatetime().replace(tzinfo=None)
    return EventsIngest(next_from, int(row.rows_before_next_from), int(row.undated_rows))


def record_events_ingest(
    engine: Engine, app_uuid: str, run_id: str, ingest: EventsIngest, now: datetime
) -> None:
    entry = {
        "app_uuid": app_uuid,
        "run_id": run_id,
        "ingested_at": now,
        "next_from": ingest.next_from,
        "rows_before_next_from": ingest.rows_before_next_from,
        "undated_rows": ingest.undated_rows,
    }
    with engine.begin() as conn:
        append_frame(conn, "esputnik_events_ingests", pd.DataFrame([entry]))


def purge_expired(
    engine: Engine,
    app_uuid: str,
    now: datetime,
    *,
    rejects_days: int,
    events_days: int,
    quarantine_days: int,
    keep_events_from: datetime,
) -> dict[str, int]:
    """Delete what is past its retention: refused rows of the sync, handled message events
    (never at or after ``keep_events_from``, the next read's start), quarantined tokens (retried
    once forgotten) and old ingest records. The ledger is kept forever. Rows deleted per table."""
    params = {
        "app_uuid": app_uuid,
        "rejects_before": db_timestamp(engine, now - timedelta(days=rejects_days)),
        "events_before": db_timestamp(engine, now - timedelta(days=events_days)),
        "quarantine_before": db_timestamp(engine, now - timedelta(days=quarantine_days)),
        "keep_events_from": db_timestamp(engine, keep_events_from),
    }
    tables = (
        "esputnik_sync_rejects",
        "esputnik_message_events_processed",
        "esputnik_message_events_rejected",
        "esputnik_token_quarantine",
        "esputnik_events_ingests",
    )
    with engine.begin() as conn:
        statements = split_statements(load_sql("purge_expired.sql"))
        deleted = [conn.execute(text(statement), params).rowcount for statement in statements]
    return dict(zip(tables, deleted, strict=True))


def apply_message_events(
    engine: Engine, app_uuid: str, run_id: str, batch_id: str, events: pd.DataFrame
) -> dict[str, int]:
    """Record events, set aside unknown tokens, mark Forbidden tokens removed; one transaction."""
    params = {
        "app_uuid": app_uuid,
        "run_id": run_id,
        "batch_id": batch_id,
        "now": db_timestamp(engine, utc_now()),
    }
    counts = {"processed": 0, "unknown_token": 0, "tokens_removed": 0}
    with engine.begin() as conn:
        delete_batch(conn, "esputnik_stage_events", batch_id)
        append_frame(conn, "esputnik_stage_events", events.assign(batch_id=batch_id))
        # the third statement dates removals, the fourth gives them their reason: its count
        rejected, processed, _, removed = (
            conn.execute(text(statement), params).rowcount
            for statement in split_statements(load_sql("apply_message_events.sql"))
        )
        delete_batch(conn, "esputnik_stage_events", batch_id)
    counts.update(processed=processed, unknown_token=rejected, tokens_removed=removed)
    return counts


def delivery_counts(engine: Engine, app_uuid: str, since: datetime) -> pd.DataFrame:
    params = {"app_uuid": app_uuid, "since": db_timestamp(engine, since)}
    with engine.connect() as conn:
        return pd.read_sql(text(load_sql("delivery_daily.sql")), conn, params=params)


def replace_delivery_days(engine: Engine, app_uuid: str, daily: pd.DataFrame) -> None:
    """Rewrite the per-day figures of the days in ``daily``."""
    with engine.begin() as conn:
        for day in daily["day"]:
            conn.execute(
                text("DELETE FROM esputnik_delivery_daily WHERE app_uuid = :app AND day = :day"),
                {"app": app_uuid, "day": day},
            )
        append_frame(
            conn,
            "esputnik_delivery_daily",
            daily.assign(app_uuid=app_uuid, computed_at=utc_now()),
        )
