"""Upgrading keeps the ledger as the truth: state tables written by the release with daily
partitions lead this version to push nothing that release already pushed."""

from sqlalchemy import text

from dagster_project.core.db import split_statements
from tests.helpers import (
    APP_UUID,
    add_phone_subscribers,
    last_metadata,
    run_sync,
    sync_resources,
    token_counts,
    warehouse_engine,
)

OLD_SCHEMA = "tests/fixtures/state_schema_before_reconcile.sql"
PUSHED = [f"70{n}" for n in range(5)]


def test_a_ledger_from_the_partitioned_release_sends_only_what_it_lacks(warehouse_url, sandbox):
    engine = warehouse_engine(warehouse_url)
    add_phone_subscribers(engine, [*PUSHED, "799"], subscribed_at="2025-07-01 10:00:00")
    with open(OLD_SCHEMA, encoding="utf-8") as schema, engine.begin() as conn:
        for statement in split_statements(schema.read()):
            conn.execute(text(statement))
        # What that release left behind: its ledger rows and one succeeded run record.
        conn.execute(
            text(
                "INSERT INTO esputnik_token_ledger (app_uuid, token, phone, pushed_at, run_id,"
                " chunk_no) VALUES (:app, :token, :phone, '2026-11-20 02:00:00', 'old-run', 1)"
            ),
            [{"app": APP_UUID, "token": t, "phone": f"38050{n:07d}"} for n, t in enumerate(PUSHED)],
        )
        conn.execute(
            text(
                "INSERT INTO esputnik_sync_runs (batch_id, run_id, app_uuid, window_start,"
                " window_end, started_at, finished_at, status, tokens_new, tokens_pushed)"
                " VALUES ('old-run', 'old-run', :app, '2026-10-22 00:00:00',"
                " '2026-11-21 00:00:00', '2026-11-20 02:00:00', '2026-11-20 02:01:00',"
                " 'succeeded', 5, 5)"
            ),
            {"app": APP_UUID},
        )

    result = run_sync(sync_resources(warehouse_url, sandbox))
    assert result.success
    assert token_counts(sandbox) == {"799": 1}
    assert last_metadata(result, "new_esputnik_tokens")["tokens_already_pushed"] == 0
    assert last_metadata(result, "validated_subscribers")["rows_already_pushed"] == 5
    with engine.connect() as conn:
        scopes = conn.execute(
            text("SELECT batch_id, scope FROM esputnik_sync_runs ORDER BY started_at")
        ).all()
    assert [scope for _, scope in scopes] == [None, "full"]

    again = run_sync(sync_resources(warehouse_url, sandbox))
    assert last_metadata(again, "esputnik_pushed_tokens")["tokens_pushed"] == 0
    assert sum(token_counts(sandbox).values()) == 1
