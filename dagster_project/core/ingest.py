"""Applying checked message events to the state: the rules of core/events.py over the storage
of core/event_store.py."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, text

from dagster_project.core.db import append_frame, db_timestamp, load_sql, utc_now
from dagster_project.core.event_store import apply_message_events
from dagster_project.core.events import FUTURE, CheckedEvents, event_keys


def handled_event_keys(engine: Engine, app_uuid: str, since: datetime) -> set[str]:
    """Keys of the events handled from ``since`` on: as stored, and rebuilt from the stored
    columns in today's canonical form (keys stored by older versions still match)."""
    params = {"app_uuid": app_uuid, "since": db_timestamp(engine, since)}
    with engine.connect() as conn:
        handled = pd.read_sql(text(load_sql("handled_event_keys.sql")), conn, params=params)
    keys = set(handled["event_key"])
    dated = handled[handled["occurred_at"].notna()]
    if len(dated):
        keys |= set(event_keys(dated))
    return keys


def ingest_checked_events(
    engine: Engine, app_uuid: str, run_id: str, checked: CheckedEvents, handled: set[str]
) -> dict[str, int]:
    """Record the refusals and apply the events among ``checked`` not in ``handled``; their
    keys join ``handled``. Counts by outcome; rejections by the word before their colon."""
    good = checked.good[~checked.good["event_key"].isin(handled)].drop_duplicates("event_key")
    bad = checked.bad[~checked.bad["event_key"].isin(handled)].drop_duplicates("event_key")
    bad = bad[~bad["event_key"].isin(good["event_key"])]
    with engine.begin() as conn:
        append_frame(
            conn,
            "esputnik_message_events_rejected",
            bad.assign(app_uuid=app_uuid, run_id=run_id, rejected_at=utc_now()),
        )
    applied = apply_message_events(engine, app_uuid, run_id, run_id, good)
    handled.update(good["event_key"], bad["event_key"])
    rejected = bad["rejection"].str.split(":").str[0].value_counts()
    return {
        "events_new": len(good) + len(bad),
        "events_processed": applied["processed"],
        "events_rejected_malformed": int(rejected.get("malformed", 0)),
        "events_rejected_unknown_status": int(rejected.get("unknown_status", 0)),
        "events_rejected_future": int(rejected.get(FUTURE, 0)),
        "events_rejected_unknown_token": applied["unknown_token"],
        "tokens_removed_by_esputnik": applied["tokens_removed"],
    }
