"""The state database, driver by driver: SQL files (``sql/*.sql``, values always bound), UTC
timestamps as each database compares them, and the fastest way each driver takes many rows
(COPY on psycopg 3, plain tuples on sqlite3)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection


def strip_line_comments(sql: str) -> str:
    """Drop ``--`` comments, where SQLAlchemy would otherwise read ``:word`` as a parameter."""
    return "\n".join(line.split("--", 1)[0].rstrip() for line in sql.splitlines()).strip()


@cache
def load_sql(name: str) -> str:
    """The text of ``sql/<name>`` shipped with the package, comments removed."""
    path = resources.files("dagster_project").joinpath("sql", name)
    return strip_line_comments(path.read_text(encoding="utf-8"))


def render_sql(name: str, **parts: str) -> str:
    """``sql/<name>`` with each ``{part}`` replaced by SQL text: queries and fragments of our
    own, never values (those stay bound parameters)."""
    sql = load_sql(name)
    for key, value in parts.items():
        sql = sql.replace("{" + key + "}", value)
    return sql


def split_statements(script: str) -> list[str]:
    """Statements of a script (no semicolons inside literals in our own files)."""
    return [stmt.strip() for stmt in script.split(";") if stmt.strip()]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def db_timestamp(engine: Engine | Connection, moment: datetime) -> datetime | str:
    """A UTC moment as the database compares it: naive datetime, or ISO text on SQLite."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if engine.dialect.name == "sqlite":
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment


def _naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _copy_tuples(conn: Connection, table: str, columns: Sequence[str], rows) -> int:
    """PostgreSQL COPY of plain rows, each written by psycopg 3 (NULLs, escaping, timestamps):
    an order of magnitude above INSERTs, and a text that reads like a NULL marker stays a text."""
    names = ", ".join(f'"{c}"' for c in columns)
    count = 0
    with (
        conn.connection.driver_connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _copy_rows(table, conn, keys: Sequence[str], data_iter) -> int:
    """pandas ``to_sql`` method: ``_copy_tuples`` (half the time a ``csv.writer`` took)."""
    return _copy_tuples(conn, table.name, keys, data_iter)


# Placeholders of the drivers whose executemany takes plain tuples (sqlite3, psycopg, psycopg2).
DRIVER_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _insert_sql(table: str, columns: Sequence[str], mark: str | None = None) -> str:
    """A one-row INSERT of ``columns`` with the driver's ``mark``, or ``:column`` for SQLAlchemy."""
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join(mark or f":{c}" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"


def _write_tuples(conn: Connection, table: str, columns: Sequence[str], rows: list) -> None:
    """Plain rows into ``table`` by the driver's fastest path: COPY on psycopg 3; one
    executemany straight on the driver where its placeholder is known (SQLAlchemy's per-row
    parameter processing took as long as the insert and its commit together on sqlite3);
    SQLAlchemy's executemany otherwise."""
    if conn.dialect.name == "postgresql" and _is_psycopg3(conn):
        _copy_tuples(conn, table, columns, rows)
    elif (mark := DRIVER_MARKS.get(conn.dialect.paramstyle)) is not None:
        conn.exec_driver_sql(_insert_sql(table, columns, mark), rows)
    else:
        named = [dict(zip(columns, row, strict=True)) for row in rows]
        conn.execute(text(_insert_sql(table, columns)), named)


def append_frame(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """Append a frame to an existing state table within the caller's transaction."""
    if frame.empty:
        return 0
    if conn.dialect.name == "sqlite":
        return _insert_sqlite(conn, table, frame)
    frame = _naive_utc(frame).astype(object).where(frame.notna(), None)
    if conn.dialect.name == "postgresql" and _is_psycopg3(conn):
        frame.to_sql(table, conn, if_exists="append", index=False, method=_copy_rows)
    else:
        # One prepared INSERT run with executemany: multi-row VALUES statements cost more to
        # compile in SQLAlchemy than they save.
        frame.to_sql(table, conn, if_exists="append", index=False, chunksize=50_000)
    return len(frame)


SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DATETIME in SQLite


SQLITE_WRITE_ROWS = 50_000  # rows made Python tuples at once: bounds the write's own memory


def _insert_sqlite(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """Executemany straight on the sqlite3 cursor, with plain Python values, a slice of
    ``SQLITE_WRITE_ROWS`` rows at a time within the caller's transaction.

    Going through pandas' ``to_sql`` and SQLAlchemy's per-row parameter processing cost more
    than the insert itself; timestamps are written in SQLAlchemy's own text format, so
    rows compare and read back the same whichever path wrote them.
    """
    frame = _naive_utc(frame)
    for start in range(0, len(frame), SQLITE_WRITE_ROWS):
        part = frame.iloc[start : start + SQLITE_WRITE_ROWS]
        columns = {}
        for name, values in part.items():
            if pd.api.types.is_datetime64_any_dtype(values.dtype):
                values = values.dt.strftime(SQLITE_DATETIME)
            columns[name] = values.astype(object).where(values.notna(), None)
        rows = zip(*(values.tolist() for values in columns.values()), strict=True)
        _write_tuples(conn, table, list(columns), list(rows))
    return len(frame)


@contextmanager
def sqlite_cursor(conn: Connection, query: str, params: dict[str, object]) -> Iterator[Any]:
    """``query`` run on the sqlite3 connection under ``conn``, for reads of many rows:
    SQLAlchemy's result rows took longer than the query itself, and sqlite3 takes the same
    ``:name`` parameters. The values are the ones SQLAlchemy would have returned."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(query, params)
        yield cursor
    finally:
        cursor.close()


def _is_psycopg3(conn: Connection) -> bool:
    return conn.dialect.driver == "psycopg"
