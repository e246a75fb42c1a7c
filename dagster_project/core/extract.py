"""Copy one partition range of the warehouse extract into the staging table, and count it.

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

from dagster_project.core.batch import RAW_COLUMNS
from dagster_project.core.state import (
    append_frame,
    db_timestamp,
    delete_batch,
    raw_row_pushed,
    render_sql,
)

EXTRACT_COLUMNS = tuple(c for c in RAW_COLUMNS if c != "source_row")
TEXT_COLUMNS = tuple(c for c in EXTRACT_COLUMNS if not c.endswith("_at"))


class ExtractError(RuntimeError):
    """The warehouse query failed or returned the wrong shape."""


def _window_params(engine: Engine, window: tuple[datetime, datetime]) -> dict[str, object]:
    return {
        "window_start": db_timestamp(engine, window[0]),
        "window_end": db_timestamp(engine, window[1]),
    }


def stages_unpushed_only(source: Engine, state: Engine) -> bool:
    """Whether the extract can leave pushed tokens out itself: state and warehouse are one
    database, so the ledger is in reach of the staging statement."""
    return source is state


def _around(template: str, query: str) -> str:
    """Place the extract query (text only, never values) inside one of our SQL templates."""
    return render_sql(
        template,
        extract_query=query.strip().rstrip(";"),
        ledger_holds_live=raw_row_pushed("q"),
    )


def extract_coverage(
    engine: Engine, query: str, window: tuple[datetime, datetime]
) -> dict[str, int]:
    """Row counts of the whole range: all rows, active ones, and those lacking identifiers."""
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
    engine: Engine, query: str, window: tuple[datetime, datetime], batch_id: str, app_uuid: str
) -> int:
    """Stage the range's not-yet-pushed rows with one statement; return how many were staged."""
    params = {"batch_id": batch_id, "app_uuid": app_uuid, **_window_params(engine, window)}
    with engine.begin() as conn:
        delete_batch(conn, "esputnik_stage_extract", batch_id)
        result = conn.execute(text(_around("stage_unpushed_extract.sql", query)), params)
        return int(result.rowcount)


def extract_streaming(
    warehouse: Engine,
    state: Engine,
    query: str,
    window: tuple[datetime, datetime],
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
            params=_window_params(warehouse, window),
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
    window: tuple[datetime, datetime],
    batch_id: str,
    app_uuid: str,
    chunk_rows: int,
    progress: Callable[[int], None] = lambda rows: None,
) -> tuple[dict[str, int], int]:
    """The range's coverage counts and the staged row count, both taken at the same time.

    Both read the same join; the count runs on its own connection in a second thread (the
    database drivers release the GIL while a statement runs), so on two cores the extract takes
    about as long as the staging alone.
    """

    def stage() -> int:
        if stages_unpushed_only(source, state):
            return extract_in_database(state, query, window, batch_id, app_uuid)
        return extract_streaming(
            source, state, query, window, batch_id, chunk_rows, progress=progress
        )

    if source.url.database in (None, "", ":memory:"):
        # an in-memory SQLite database exists once per connection: no second thread there
        return extract_coverage(source, query, window), stage()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="coverage") as pool:
        counting = pool.submit(extract_coverage, source, query, window)
        staged = stage()
        return counting.result(), staged
