"""Staging tables of a batch: the raw extract rows and their reading back in chunks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime

import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from dagster_project.core.columns import EXTRACT_COLUMNS
from dagster_project.core.db import db_timestamp, load_sql, split_statements
from dagster_project.core.decoding import lenient_text

READ_CHUNK_ROWS = 100_000
TEXT = pd.StringDtype("pyarrow")
# A staged row as it is read back: its position in the extract, then the warehouse's values.
# Large strings: what pandas' Arrow-backed strings hold, so a frame is made without a copy.
EXTRACT_SCHEMA = pa.schema(
    [("source_row", pa.int64()), *((column, pa.large_string()) for column in EXTRACT_COLUMNS)]
)
# The same row as sqlite3 fetches it with text as bytes, for Arrow to build in one call.
FETCHED_ROW = pa.struct(
    [("source_row", pa.int64()), *((column, pa.large_binary()) for column in EXTRACT_COLUMNS)]
)


STAGE_TABLES = (
    "esputnik_stage_extract",
    "esputnik_stage_valid",
    "esputnik_stage_new",
    "esputnik_stage_events",
)


def stream_unpushed_extract(
    engine: Engine, batch_id: str, app_uuid: str, recheck_ledger: bool = True
) -> Iterator[pa.Table]:
    """The batch's staged rows whose token the ledger does not hold live: all that needs work,
    ``READ_CHUNK_ROWS`` at a time, as Arrow tables of ``EXTRACT_SCHEMA``.

    On a nightly rerun most tokens are pushed already; skipping them keeps the Python side
    proportional to what is new, not to the size of the range. Without ``recheck_ledger`` the
    staged rows are taken as they are: the in-database extract staged unpushed rows only, and a
    token pushed since then is still caught by the diff.
    """
    params = {"batch_id": batch_id, "app_uuid": app_uuid, "recheck": int(recheck_ledger)}
    query = load_sql("read_unpushed_extract.sql")
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            yield from _sqlite_tables(conn.connection.driver_connection, query, params)
            return
        chunks = pd.read_sql(
            text(query),
            conn.execution_options(stream_results=True),
            params=params,
            chunksize=READ_CHUNK_ROWS,
            dtype_backend="numpy_nullable",
        )
        for chunk in chunks:
            yield pa.Table.from_pandas(compact_extract(chunk), EXTRACT_SCHEMA, preserve_index=False)


def read_unpushed_extract(
    engine: Engine, batch_id: str, app_uuid: str, recheck_ledger: bool = True
) -> pd.DataFrame:
    """All of ``stream_unpushed_extract`` in one frame."""
    tables = list(stream_unpushed_extract(engine, batch_id, app_uuid, recheck_ledger))
    return extract_frame(pa.concat_tables(tables) if tables else EXTRACT_SCHEMA.empty_table())


def extract_frame(table: pa.Table) -> pd.DataFrame:
    """Staged rows as validation reads them: every value an Arrow-backed string (a fraction of
    the memory of Python objects), ``source_row`` an integer. No copy of the text."""
    return table.to_pandas(types_mapper={pa.large_string(): TEXT}.get)


def compact_extract(frame: pd.DataFrame) -> pd.DataFrame:
    """Every value as an Arrow-backed string, the same type whatever the database or the chunk;
    validation parses what it needs."""
    return frame.astype(dict.fromkeys(EXTRACT_COLUMNS, TEXT)).astype({"source_row": "int64"})


def _sqlite_tables(
    connection: sqlite3.Connection, query: str, params: dict[str, object]
) -> Iterator[pa.Table]:
    """``query``'s rows straight from sqlite3 into Arrow, ``READ_CHUNK_ROWS`` at a time.

    Text is fetched as bytes and Arrow builds the columns from the row tuples and decodes them:
    the engine's lenient ``text_factory`` (resources.py) is a Python call per value, and so is
    a transposition of the rows. Two cases go value by value: a column with a byte that is not
    UTF-8 (decoded by ``lenient_text``, as that factory does) and a chunk with a number in a
    timestamp column (NUMERIC affinity keeps epochs as numbers; TEXT columns never hold one),
    which reads as ``str()`` of it, as pandas read it beside text in the same chunk (a chunk of
    numbers only, pandas made floats: '20260105.0', which the timestamp rule cannot place).
    """
    factory = connection.text_factory
    connection.text_factory = bytes
    try:
        cursor = connection.execute(query, params)
        try:
            while rows := cursor.fetchmany(READ_CHUNK_ROWS):
                yield pa.Table.from_arrays(_row_columns(rows), schema=EXTRACT_SCHEMA)
        finally:
            cursor.close()
    finally:
        connection.text_factory = factory


def _row_columns(rows: list[tuple]) -> list[pa.Array]:
    """A chunk's row tuples as the columns of ``EXTRACT_SCHEMA``."""
    try:
        parts = pa.array(rows, FETCHED_ROW).flatten()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a value that is neither bytes nor None
        columns = list(zip(*rows, strict=True))
        return [pa.array(columns[0], pa.int64())] + [_slow_text(c) for c in columns[1:]]
    return [parts[0]] + [_text(part) for part in parts[1:]]


def _text(values: pa.Array) -> pa.Array:
    try:
        return values.cast(pa.large_string())
    except pa.ArrowInvalid:  # a byte that is not UTF-8
        return _slow_text(values.to_pylist())


def _slow_text(values: Sequence[object]) -> pa.Array:
    return pa.array([_as_text(value) for value in values], pa.large_string())


def _as_text(value: object) -> str | None:
    """A fetched value as text: bytes as the state engine's ``text_factory`` decodes them, a
    number as ``str()``."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return lenient_text(value)
    return str(value)


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
