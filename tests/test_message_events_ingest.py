"""The message-event ingest on SQLite and PostgreSQL: future dates, late and undated rows,
chunks, one table for several apps, stable keys and retention."""

from datetime import timedelta

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize
from sqlalchemy import create_engine, text

from dagster_project.core.db import append_frame, utc_now
from dagster_project.core.event_store import purge_expired
from dagster_project.core.events import check_events, event_keys
from dagster_project.core.ledger import ledger_rows, record_chunk
from dagster_project.core.schema import ensure_state_schema
from dagster_project.delivery_assets import esputnik_message_events_ingested
from dagster_project.resources import AlertWebhookResource, EsputnikResource, WarehouseResource
from dagster_project.settings import SyncSettings
from dagster_project.warehouse_seed import create_message_events_table, land_message_events
from tests.helpers import API_KEY, APP_UUID, last_metadata

OTHER_APP = "11111111-2222-4333-8444-555555555555"
TOKENS = ["101", "102", "103"]


def stamp(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def event(token: str, when, status: str = "SENT", message: str = "m-1", **extra) -> dict:
    occurred = stamp(when) if when is not None else None
    row = {"token": token, "message_id": message, "status": status, "reason": None}
    return row | {"occurred_at": occurred} | extra


@pytest.fixture
def engine(warehouse_url):
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    record_chunk(engine, ledger_rows(APP_UUID, "r-0", 0, [{"token": t} for t in TOKENS]))
    create_message_events_table(engine)
    yield engine
    engine.dispose()


def ingest(engine, **settings) -> dict:
    url = engine.url.render_as_string(hide_password=False)
    result = materialize(
        [esputnik_message_events_ingested],
        resources={
            "warehouse": WarehouseResource(url=url),
            "esputnik": EsputnikResource(api_key=API_KEY, app_uuid=APP_UUID),
            "sync_settings": SyncSettings(**settings),
            "alerts": AlertWebhookResource(),
        },
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    metadata = last_metadata(result, "esputnik_message_events_ingested")
    assert metadata["ingest_failed"] is False
    return metadata


def test_a_future_dated_event_is_refused_and_does_not_stall_the_cursor(engine):
    now = utc_now()
    land_message_events(engine, [event("101", now - timedelta(hours=1))])
    land_message_events(engine, [event("102", now.replace(year=2099))])
    first = ingest(engine)
    assert (first["events_processed"], first["events_rejected_future"]) == (1, 1)
    assert ingest(engine)["events_new"] == 0  # refused once, not again

    land_message_events(engine, [event("103", now - timedelta(minutes=30), "CLICKED")])
    later = ingest(engine)
    assert (later["events_new"], later["events_processed"]) == (1, 1)
    with engine.connect() as conn:
        rejection = conn.execute(
            text("SELECT rejection FROM esputnik_message_events_rejected")
        ).scalar_one()
    assert rejection.startswith("future: occurred_at after")


def test_events_landing_below_the_read_window_are_counted(engine):
    now = utc_now()
    land_message_events(engine, [event("101", now - timedelta(hours=1))])
    assert ingest(engine, events_grace_hours=2)["events_late_unread"] == 0
    land_message_events(
        engine,
        [event("102", now - timedelta(days=3)), event("103", now - timedelta(days=4))],
    )
    late = ingest(engine, events_grace_hours=2)
    assert (late["events_late_unread"], late["events_new"]) == (2, 0)
    assert ingest(engine, events_grace_hours=2)["events_late_unread"] == 0  # counted once


def test_events_are_read_in_chunks_and_undated_rows_are_refused_once(engine):
    now = utc_now()
    dated = [event(t, now - timedelta(minutes=n), message=f"m-{n}") for n, t in
             enumerate(TOKENS * 3)]  # fmt: skip
    land_message_events(engine, [*dated, event("101", None), event("102", None)])
    first = ingest(engine, events_chunk_rows=2)
    assert (first["events_read"], first["events_processed"]) == (11, 9)
    assert first["events_rejected_malformed"] == 2

    again = ingest(engine, events_chunk_rows=2)
    assert (again["events_read"], again["events_new"]) == (9, 0)  # undated rows not re-read

    land_message_events(engine, [event("103", None)])
    third = ingest(engine, events_chunk_rows=2)
    assert (third["events_read"], third["events_new"]) == (12, 1)
    assert third["events_rejected_malformed"] == 1


def test_only_the_configured_apps_events_are_read_when_the_table_has_app_uuid(engine):
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE esputnik_message_events ADD COLUMN app_uuid VARCHAR(36)"))
    now = utc_now() - timedelta(hours=1)
    land_message_events(engine, [])
    rows = [
        event("101", now, "FAILED", reason="Forbidden") | {"app_uuid": OTHER_APP},
        event("102", now) | {"app_uuid": APP_UUID},
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO esputnik_message_events (token, message_id, status, reason,"
                " occurred_at, app_uuid) VALUES (:token, :message_id, :status, :reason,"
                " :occurred_at, :app_uuid)"
            ),
            rows,
        )
    figures = ingest(engine)
    assert (figures["events_read"], figures["events_processed"]) == (1, 1)
    assert (figures["events_per_app"], figures["tokens_removed_by_esputnik"]) == (1, 0)
    with engine.connect() as conn:
        removed = conn.execute(
            text("SELECT COUNT(*) FROM esputnik_token_ledger WHERE removed_at IS NOT NULL")
        ).scalar_one()
    assert removed == 0  # the other app's Forbidden did not touch this app's ledger


def test_the_same_event_keeps_its_key_whatever_the_batch_precision():
    whole = pd.Timestamp("2026-02-01 10:00:00")
    alone = pd.DataFrame(
        {
            "token": ["1"],
            "message_id": ["m"],
            "status": ["SENT"],
            "reason": [None],
            "occurred_at": [whole],
        }
    )
    with_micro = pd.concat(
        [alone, alone.assign(occurred_at=pd.Timestamp("2026-02-01 10:00:00.123456"))],
        ignore_index=True,
    )
    as_text = alone.assign(occurred_at=["2026-02-01 12:00:00+02:00"])
    keys = {event_keys(frame)[0] for frame in (alone, with_micro, as_text)}
    assert keys == {"m|1|SENT|2026-02-01 10:00:00.000000"}
    assert check_events(with_micro).good["event_key"].is_unique


def test_overlapping_reads_count_each_event_once(engine):
    now = utc_now().replace(microsecond=0)
    land_message_events(
        engine,
        [event("101", now - timedelta(hours=2)), event("102", now - timedelta(hours=1))],
    )
    with engine.begin() as conn:  # one event with microseconds changes the batch's precision
        conn.execute(
            text(
                "INSERT INTO esputnik_message_events (token, message_id, status, reason,"
                " occurred_at) VALUES ('103', 'm-1', 'SENT', NULL, :at)"
            ),
            {"at": now - timedelta(minutes=5, microseconds=-123456)},
        )
    assert ingest(engine)["events_processed"] == 3
    assert ingest(engine)["events_new"] == 0


def test_purge_expired_keeps_the_ledger_and_recent_rows(engine):
    now = utc_now()
    old, recent = now - timedelta(days=200), now - timedelta(days=1)

    def processed(when, key):
        return {
            "app_uuid": APP_UUID,
            "event_key": key,
            "token": "101",
            "message_id": "m",
            "status": "SENT",
            "reason": None,
            "occurred_at": when,
            "run_id": "r",
            "processed_at": when,
        }

    rows = {
        "esputnik_sync_rejects": [
            {
                "run_id": "r",
                "batch_id": "b",
                "source_row": n,
                "chat_id": "1",
                "customer_id": None,
                "outcome": "rejected",
                "reason": "blocked",
                "detail": None,
                "recorded_at": when,
            }
            for n, when in enumerate((old, recent))
        ],
        "esputnik_message_events_processed": [processed(old, "k-old"), processed(recent, "k-new")],
        "esputnik_message_events_rejected": [
            {
                "app_uuid": APP_UUID,
                "event_key": key,
                "token": None,
                "message_id": "m",
                "status": "SENT",
                "reason": None,
                "occurred_at": when,
                "rejection": "malformed",
                "run_id": "r",
                "rejected_at": rejected_at,
            }
            for key, when, rejected_at in (
                ("r-old", old, old),
                ("r-undated", None, old),
                ("r-new", recent, recent),
                ("r-new-undated", None, recent),
            )
        ],
        "esputnik_token_quarantine": [
            {
                "app_uuid": APP_UUID,
                "token": t,
                "fingerprint": "f",
                "reason": "400",
                "run_id": "r",
                "quarantined_at": when,
            }
            for t, when in (("101", old), ("102", recent))
        ],
    }
    with engine.begin() as conn:
        for table, frame in rows.items():
            append_frame(conn, table, pd.DataFrame(frame))
    purged = purge_expired(
        engine,
        APP_UUID,
        now,
        rejects_days=90,
        events_days=90,
        quarantine_days=90,
        keep_events_from=now - timedelta(days=2),
    )
    assert purged["esputnik_sync_rejects"] == 1
    assert purged["esputnik_message_events_processed"] == 1
    assert purged["esputnik_message_events_rejected"] == 2
    assert purged["esputnik_token_quarantine"] == 1
    with engine.connect() as conn:
        keys = {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT event_key FROM esputnik_message_events_processed UNION ALL "
                    "SELECT event_key FROM esputnik_message_events_rejected"
                )
            )
        }
        ledger = conn.execute(text("SELECT COUNT(*) FROM esputnik_token_ledger")).scalar_one()
    assert keys == {"k-new", "r-new", "r-new-undated"}
    assert ledger == len(TOKENS)
    # Events the next read still covers are never purged, however old.
    kept = purge_expired(
        engine,
        APP_UUID,
        now + timedelta(days=365),
        rejects_days=90,
        events_days=90,
        quarantine_days=90,
        keep_events_from=recent,
    )
    assert kept["esputnik_message_events_processed"] == 0
