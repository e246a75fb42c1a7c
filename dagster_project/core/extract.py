"""Copy a run's scope of the warehouse extract into the staging table, and count it.

When the sync state lives in the warehouse database (the default) the copy is a single
``INSERT ... SELECT`` that never leaves the database and skips rows whose token is already live
in the ledger; otherwise rows stream through pandas in chunks, so memory stays flat whatever the
range, and the skip happens when the validation reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, text

from dagster_project.core.columns import EXTRACT_COLUMNS
from dagster_project.core.db import append_frame, db_timestamp, load_sql, render_sql
from dagster_project.core.scope import Scope
from dagster_project.core.staging import delete_batch

TEXT_COLUMNS = tuple(c for c in EXTRACT_COLUMNS if not c.endswith("_at"))
# A row counts as changed when any of these it returns is at or after the change cursor.
CHANGE_COLUMNS = ("subscribed_at", "status_changed_at", "crm_updated_at")


class ExtractError(RuntimeError):
    """The warehouse query failed or returned the wrong shape."""


def _window_params(engine: Engine, window: tuple[datetime, datetime]) -> dict[str, object]:
    return {
        "window_start": db_timestamp(engine, window[0]),
        "window_end": db_timestamp(engine, window[1]),
    }


def _scope_params(engine: Engine, scope: Scope) -> dict[str, object]:
    params = _window_params(engine, scope.window)
    if scope.changed_since is not None:
        params["changed_since"] = db_timestamp(engine, scope.changed_since)
    return params


def changed_rows_query(engine: Engine, query: str, scope: Scope) -> str:
    """The extract narrowed to rows changed since ``:changed_since``, judged by whichever of
    CHANGE_COLUMNS the query returns (a custom query may lack ``crm_updated_at``)."""
    inner = query.strip().rstrip(";")
    with engine.connect() as conn:
        probe = conn.execute(
            text(f"SELECT * FROM (\n{inner}\n) q WHERE 1 = 0"),
            _window_params(engine, scope.window),
        )
        present = set(probe.keys())
    changed = " OR ".join(f"q.{c} >= :changed_since" for c in CHANGE_COLUMNS if c in present)
    if not changed:
        raise ExtractError(f"the extract query returns none of {CHANGE_COLUMNS}")
    return f"SELECT * FROM (\n{inner}\n) q WHERE {changed}"


def stages_unpushed_only(source: Engine, state: Engine) -> bool:
    """Whether the extract can leave pushed tokens out itself: state and warehouse are one
    database, so the ledger is in reach of the staging statement."""
    return source is state


def _around(template: str, query: str) -> str:
    """Place the extract query (text only, never values) inside one of our SQL templates."""
    return render_sql(template, extract_query=query.strip().rstrip(";"))


def unreadable_timestamps(engine: Engine) -> int:
    """Rows of the reference ``telegram_subscribers`` whose timestamps a SQLite warehouse cannot
    compare with a window (it compares text); 0 on other databases, which have a real type."""
    if engine.dialect.name != "sqlite":
        return 0
    with engine.connect() as conn:
        return int(conn.execute(text(load_sql("unreadable_timestamps.sql"))).scalar_one())


def extract_coverage(
    engine: Engine, query: str, window: tuple[datetime, datetime]
) -> dict[str, int]:
    """Row counts of the whole window: all rows, active ones, and those lacking identifiers."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(_around("identifier_coverage.sql", query)), _window_params(engine, window)
        )
        kinds = {int(kind): int(count) for kind, count in rows}
    return {
        "rows_extracted": sum(kinds.values()),
        "active_rows": sum(kinds.get(kind, 0) for kind in (1, 2, 3)),
        "rows_without_identifier": kinds.get(3, 0),
        "rows_without_crm_link": kinds.get(2, 0) + kinds.get(3, 0),
    }


def extract_in_database(
    engine: Engine, query: str, scope: Scope, batch_id: str, app_uuid: str
) -> int:
    """Stage the scope's not-yet-pushed rows with one statement; return how many were staged."""
    params = {"batch_id": batch_id, "app_uuid": app_uuid, **_scope_params(engine, scope)}
    with engine.begin() as conn:
        delete_batch(conn, "esputnik_stage_extract", batch_id)
        result = conn.execute(text(_around("stage_unpushed_extract.sql", query)), params)
        return int(result.rowcount)


def extract_streaming(
    warehouse: Engine,
    state: Engine,
    query: str,
    scope: Scope,
    batch_id: str,
    chunk_rows: int,
    progress: Callable[[int], None] = lambda rows: None,
) -> int:
    """Stage the extract across databases, ``chunk_rows`` at a time; return the row count."""
    with state.begin() as conn:
        delete_batch(conn, "esputnik_stage_extract", batch_id)
    total = 0
    with warehouse.connect() as source:
        chunks = pd.read_sql(
            text(query),
            source.execution_options(stream_results=True),
            params=_scope_params(warehouse, scope),
            chunksize=chunk_rows,
            dtype_backend="numpy_nullable",
        )
        for chunk in chunks:
            missing = [c for c in EXTRACT_COLUMNS if c not in chunk.columns]
            if missing:
                raise ExtractError(f"the extract query returns no column(s) {missing}")
            frame = chunk[list(EXTRACT_COLUMNS)].copy()
            for column in TEXT_COLUMNS:
                frame[column] = frame[column].astype("string")
            frame.insert(0, "source_row", range(total + 1, total + len(frame) + 1))
            frame.insert(0, "batch_id", batch_id)
            with state.begin() as conn:
                append_frame(conn, "esputnik_stage_extract", frame)
            total += len(frame)
            progress(total)
    return total


def extract_batch(
    source: Engine,
    state: Engine,
    query: str,
    scope: Scope,
    batch_id: str,
    app_uuid: str,
    chunk_rows: int,
    progress: Callable[[int], None] = lambda rows: None,
) -> tuple[dict[str, int], int]:
    """The window's coverage counts and the staged row count, both taken at the same time.

    Coverage always counts the whole window, changed or not: a broken CRM join shows on every
    run. Both read the same join; the count runs on its own connection in a second thread (the
    database drivers release the GIL while a statement runs), so on two cores the extract takes
    about as long as the staging alone.
    """
    window = scope.window
    staged_query = (
        query if scope.changed_since is None else changed_rows_query(source, query, scope)
    )

    def stage() -> int:
        if stages_unpushed_only(source, state):
            return extract_in_database(state, staged_query, scope, batch_id, app_uuid)
        return extract_streaming(
            source, state, staged_query, scope, batch_id, chunk_rows, progress=progress
        )

    if source.url.database in (None, "", ":memory:"):
        # an in-memory SQLite database exists once per connection: no second thread there
        return extract_coverage(source, query, window), stage()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="coverage") as pool:
        counting = pool.submit(extract_coverage, source, query, window)
        staged = stage()
        return counting.result(), staged
