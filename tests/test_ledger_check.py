"""The ledger check counts the run's own tokens held live twice, on both databases."""

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
