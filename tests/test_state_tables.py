"""State tables: the ledger check counts the run's own tokens held live twice, and older
tables gain newer columns; on both databases."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from dagster_project.core.state import ensure_state_schema, ledger_duplicates

APP = "app-1"


def test_counts_only_this_batchs_tokens_held_live_twice(warehouse_url):
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO esputnik_stage_new (batch_id, source_row, token, fingerprint)"
                " VALUES (:batch_id, :source_row, :token, '')"
            ),
            [
                {"batch_id": "b1", "source_row": 1, "token": "t1"},
                {"batch_id": "b1", "source_row": 2, "token": "t2"},
                {"batch_id": "b2", "source_row": 1, "token": "t3"},
            ],
        )
        conn.execute(
            text(
                "INSERT INTO esputnik_token_ledger (app_uuid, token, pushed_at, run_id, chunk_no,"
                " removed_at) VALUES (:app, :token, '2026-01-05 10:00:00', 'r', 1, :removed_at)"
            ),
            [
                {"app": APP, "token": "t1", "removed_at": None},
                {"app": APP, "token": "t1", "removed_at": None},  # sent twice: counted
                {"app": APP, "token": "t2", "removed_at": "2026-01-06 10:00:00"},
                {"app": APP, "token": "t2", "removed_at": None},  # re-pushed after removal: fine
                {"app": APP, "token": "t3", "removed_at": None},
                {"app": APP, "token": "t3", "removed_at": None},  # another batch's token
                {"app": "app-2", "token": "t2", "removed_at": None},  # another app
            ],
        )
    assert ledger_duplicates(engine, APP, "b1") == 1
    assert ledger_duplicates(engine, APP, "b2") == 1
    assert ledger_duplicates(engine, "app-2", "b1") == 0
    engine.dispose()


def test_state_schema_adds_newer_columns_to_an_older_run_table(warehouse_url):
    engine = create_engine(warehouse_url)
    with engine.begin() as conn:  # the run table as first released, without the push timings
        conn.execute(
            text(
                "CREATE TABLE esputnik_sync_runs (batch_id TEXT PRIMARY KEY, run_id TEXT NOT NULL,"
                " app_uuid TEXT NOT NULL, window_start TIMESTAMP NOT NULL,"
                " window_end TIMESTAMP NOT NULL, started_at TIMESTAMP NOT NULL,"
                " finished_at TIMESTAMP, status TEXT NOT NULL, push_seconds DOUBLE PRECISION)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO esputnik_sync_runs VALUES ('b0', 'r0', :app, '2026-01-01',"
                " '2026-01-02', '2026-01-02', NULL, 'succeeded', 1.5)"
            ),
            {"app": APP},
        )
    ensure_state_schema(engine)
    ensure_state_schema(engine)  # and again: nothing left to add
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT push_seconds, sending_seconds, requests_per_second_limit"
                " FROM esputnik_sync_runs WHERE batch_id = 'b0'"
            )
        ).one()
    assert tuple(row) == (1.5, None, None)
    engine.dispose()
