"""``esputnik_sync_runs``: one row per sync run, its scope, counts and seconds per phase."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, text

from dagster_project.core.db import db_timestamp, load_sql, utc_now


def recent_new_tokens(engine: Engine, app_uuid: str, batch_id: str, runs: int) -> list[int]:
    """tokens_new of the app's last ``runs`` finished runs, newest first."""
    params = {"app_uuid": app_uuid, "batch_id": batch_id, "runs": runs}
    with engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(text(load_sql("recent_new_tokens.sql")), params)]


RUN_COUNTERS = (
    "rows_extracted",
    "rows_staged",
    "active_rows",
    "rows_without_identifier",
    "rows_without_crm_link",
    "rows_valid",
    "rows_rejected",
    "identifiers_dropped",
    "tokens_already_pushed",
    "tokens_new",
    "tokens_quarantine_skipped",
    "tokens_pushed",
    "tokens_quarantined",
    "chunks_pushed",
    "requests_sent",
    "extract_seconds",
    "validate_seconds",
    "diff_seconds",
    "push_seconds",
    "sending_seconds",
    "requests_per_second_limit",
)


def start_run_record(
    engine: Engine,
    batch_id: str,
    run_id: str,
    app_uuid: str,
    window: tuple[datetime, datetime],
    scope: str = "full",
    changed_since: datetime | None = None,
) -> None:
    """Open (or reopen, on re-execution) the batch's row in ``esputnik_sync_runs``."""
    params = {
        "batch_id": batch_id,
        "run_id": run_id,
        "app_uuid": app_uuid,
        "window_start": db_timestamp(engine, window[0]),
        "window_end": db_timestamp(engine, window[1]),
        "scope": scope,
        "changed_since": None if changed_since is None else db_timestamp(engine, changed_since),
        "started_at": db_timestamp(engine, utc_now()),
    }
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM esputnik_sync_runs WHERE batch_id = :batch_id"), params)
        conn.execute(
            text(
                "INSERT INTO esputnik_sync_runs (batch_id, run_id, app_uuid, window_start,"
                " window_end, scope, changed_since, started_at, status) VALUES (:batch_id,"
                " :run_id, :app_uuid, :window_start, :window_end, :scope, :changed_since,"
                " :started_at, 'running')"
            ),
            params,
        )


def last_successful_starts(
    engine: Engine, app_uuid: str
) -> tuple[datetime | None, datetime | None]:
    """Start of the app's latest successful full read, and of its latest successful full or
    change run: the change cursor's anchors. Rows of range runs and dry runs do not count."""
    with engine.connect() as conn:
        row = conn.execute(text(load_sql("change_cursor.sql")), {"app_uuid": app_uuid}).one()
    return _as_datetime(row.last_full_at), _as_datetime(row.last_success_at)


def _as_datetime(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def update_run_record(
    engine: Engine, batch_id: str, status: str | None = None, **counters: float
) -> None:
    """Set phase counters on the batch's run record; a final ``status`` stamps finished_at."""
    unknown = set(counters) - set(RUN_COUNTERS)
    if unknown:
        raise ValueError(f"unknown run counters {sorted(unknown)}")
    assignments = [f"{name} = :{name}" for name in counters]
    params: dict[str, object] = {"batch_id": batch_id, **counters}
    if status:
        assignments += ["finished_at = :finished_at", "status = :status"]
        params |= {"finished_at": db_timestamp(engine, utc_now()), "status": status}
    if not assignments:
        return
    statement = f"UPDATE esputnik_sync_runs SET {', '.join(assignments)} WHERE batch_id = :batch_id"
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def mark_run_failed(engine: Engine, batch_id: str, reason: str) -> int:
    """Record why a run failed on its history row; returns the rows updated (0 if none)."""
    with engine.begin() as conn:
        result = conn.execute(
            text(
                "UPDATE esputnik_sync_runs SET status = 'failed', failure_reason = :reason,"
                " finished_at = :finished_at WHERE batch_id = :batch_id"
            ),
            {
                "batch_id": batch_id,
                "reason": reason[:2000],
                "finished_at": db_timestamp(engine, utc_now()),
            },
        )
        return int(result.rowcount)


def read_run_record(engine: Engine, batch_id: str) -> dict[str, object]:
    """The batch's row of ``esputnik_sync_runs`` (the extract's counts, for later steps)."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM esputnik_sync_runs WHERE batch_id = :batch_id"),
            {"batch_id": batch_id},
        ).one()
    return dict(row._mapping)
