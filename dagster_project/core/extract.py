"""Copy one partition range of the warehouse extract into the staging table.

When the sync state lives in the warehouse database (the default) the copy is a single
``INSERT ... SELECT`` that never leaves the database; otherwise rows stream through pandas in
chunks, so memory stays flat whatever the range.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, text

from dagster_project.core.batch import RAW_COLUMNS
from dagster_project.core.state import append_frame, db_timestamp, delete_batch

EXTRACT_COLUMNS = tuple(c for c in RAW_COLUMNS if c != "source_row")
TEXT_COLUMNS = tuple(c for c in EXTRACT_COLUMNS if not c.endswith("_at"))


class ExtractError(RuntimeError):
    """The warehouse query failed or returned the wrong shape."""


def _window_params(engine: Engine, window: tuple[datetime, datetime]) -> dict[str, object]:
    return {
        "window_start": db_timestamp(engine, window[0]),
        "window_end": db_timestamp(engine, window[1]),
    }


def extract_in_database(
    engine: Engine, query: str, window: tuple[datetime, datetime], batch_id: str
) -> int:
    """Stage the extract with one statement inside the shared database; return the row count."""
    columns = ", ".join(f"q.{c}" for c in EXTRACT_COLUMNS)
    inner = query.strip().rstrip(";")
    statement = text(
        f"INSERT INTO esputnik_stage_extract (batch_id, source_row, {', '.join(EXTRACT_COLUMNS)})\n"
        f"SELECT :batch_id, ROW_NUMBER() OVER (), {columns}\nFROM (\n{inner}\n) q"
    )
    with engine.begin() as conn:
        delete_batch(conn, "esputnik_stage_extract", batch_id)
        result = conn.execute(statement, {"batch_id": batch_id, **_window_params(engine, window)})
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
