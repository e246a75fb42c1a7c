"""Staging tables of a batch: the raw extract rows and their reading back in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from dagster_project.core.columns import EXTRACT_COLUMNS, RAW_COLUMNS
from dagster_project.core.db import db_timestamp, load_sql, split_statements

READ_CHUNK_ROWS = 100_000


STAGE_TABLES = (
    "esputnik_stage_extract",
    "esputnik_stage_valid",
    "esputnik_stage_new",
    "esputnik_stage_events",
)


def stream_unpushed_extract(
    engine: Engine, batch_id: str, app_uuid: str, recheck_ledger: bool = True
) -> Iterator[pd.DataFrame]:
    """The batch's staged rows whose token the ledger does not hold live: all that needs work,
    ``READ_CHUNK_ROWS`` at a time.

    On a nightly rerun most tokens are pushed already; skipping them keeps the Python side
    proportional to what is new, not to the size of the range. Without ``recheck_ledger`` the
    staged rows are taken as they are: the in-database extract staged unpushed rows only, and a
    token pushed since then is still caught by the diff.
    """
    params = {"batch_id": batch_id, "app_uuid": app_uuid, "recheck": int(recheck_ledger)}
    query = load_sql("read_unpushed_extract.sql")
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # pandas reads sqlite3 itself, with the same conversions, in a fifth less time than
            # through SQLAlchemy's result rows (sqlite3 takes the same ":name" parameters)
            source, sql = conn.connection.driver_connection, query
        else:
            source, sql = conn.execution_options(stream_results=True), text(query)
        chunks = pd.read_sql(
            sql,
            source,
            params=params,
            chunksize=READ_CHUNK_ROWS,
            dtype_backend="numpy_nullable",
        )
        for chunk in chunks:
            yield _compact(chunk)


def read_unpushed_extract(
    engine: Engine, batch_id: str, app_uuid: str, recheck_ledger: bool = True
) -> pd.DataFrame:
    """All of ``stream_unpushed_extract`` in one frame."""
    frames = list(stream_unpushed_extract(engine, batch_id, app_uuid, recheck_ledger))
    if not frames:
        return _compact(pd.DataFrame(columns=list(RAW_COLUMNS)))
    return pd.concat(frames, ignore_index=True)


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """Every value as an Arrow-backed string (a fraction of the memory of Python objects, and
    the same type whatever the database or the chunk); validation parses what it needs."""
    return frame.astype(dict.fromkeys(EXTRACT_COLUMNS, "string[pyarrow]")).astype(
        {"source_row": "int64"}
    )


def count_batch(engine: Engine, table: str, batch_id: str) -> int:
    if table not in STAGE_TABLES:
        raise ValueError(f"{table} is not a staging table")
    with engine.connect() as conn:
        query = text(f"SELECT COUNT(*) FROM {table} WHERE batch_id = :batch_id")
        return int(conn.execute(query, {"batch_id": batch_id}).scalar_one())


def purge_stale_batches(engine: Engine, older_than: datetime) -> None:
    """Forget staging rows of batches whose last validated event predates ``older_than``.

    Staging rows stay after a run so that a re-execution from failure can resume; a week later
    they are only clutter.
    """
    cutoff = db_timestamp(engine, older_than)
    with engine.begin() as conn:
        for statement in split_statements(load_sql("purge_stale_batches.sql")):
            conn.execute(text(statement), {"cutoff": cutoff})


def delete_batch(conn: Connection, table: str, batch_id: str) -> None:
    """Drop one batch's rows from a staging table (re-execution starts clean)."""
    if table not in STAGE_TABLES:
        raise ValueError(f"{table} is not a staging table")
    conn.execute(text(f"DELETE FROM {table} WHERE batch_id = :batch_id"), {"batch_id": batch_id})
