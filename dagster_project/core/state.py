"""SQL for the sync state: staging tables, the ledger of pushed tokens, the rejects.

Every statement binds its values; the SQL itself lives in ``sql/*.sql`` and runs unchanged on
SQLite and PostgreSQL. Large writes go through COPY on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from dagster_project.core.batch import RAW_COLUMNS
from dagster_project.core.events import FUTURE, CheckedEvents, event_keys
from dagster_project.core.locks import advisory_key
from dagster_project.core.settled import settled_pairs

READ_CHUNK_ROWS = 100_000
STAGE_TABLES = (
    "esputnik_stage_extract",
    "esputnik_stage_valid",
    "esputnik_stage_new",
    "esputnik_stage_events",
)


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


def ledger_holds_live(token: str, last_event_at: str) -> str:
    """SQL condition: the ledger holds ``token`` (an SQL expression) live for ``:app_uuid``."""
    return render_sql("ledger_holds_live.sql", token=token, last_event_at=last_event_at)


def raw_row_pushed(row: str) -> str:
    """``ledger_holds_live`` for a raw extract row aliased ``row``; its token is TRIM(chat_id)
    here (rows with other whitespace around the chat id are caught by the diff)."""
    return ledger_holds_live(
        f"TRIM(CAST({row}.chat_id AS VARCHAR(64)))", render_sql("latest_event.sql", row=row)
    )


def valid_row_sql(name: str, row: str) -> str:
    """``sql/<name>`` over normalized rows aliased ``row`` (token, last_event_at, fingerprint),
    with the ledger, quarantine and in-doubt fragments filled in."""
    return render_sql(
        name,
        ledger_holds_live=ledger_holds_live(f"{row}.token", f"{row}.last_event_at"),
        quarantined_as_is=render_sql("quarantined_as_is.sql", row=row),
        in_doubt=render_sql("in_doubt.sql", row=row),
    )


def split_statements(script: str) -> list[str]:
    """Statements of a script (no semicolons inside literals in our own files)."""
    return [stmt.strip() for stmt in script.split(";") if stmt.strip()]


SCHEMA_LOCK_KEY = advisory_key("esputnik-sync:state-schema")

# Columns added to existing tables after their first release: (table, column, SQL type).
# CREATE TABLE IF NOT EXISTS leaves an older table as it is, so these are added on start.
ADDED_COLUMNS = (
    ("esputnik_sync_runs", "sending_seconds", "DOUBLE PRECISION"),
    ("esputnik_sync_runs", "requests_per_second_limit", "DOUBLE PRECISION"),
    ("esputnik_sync_runs", "scope", "TEXT"),
    ("esputnik_sync_runs", "changed_since", "TIMESTAMP"),
)
# Unique indexes added after their table's first release: (index, table, sql file holding the
# duplicate count and the CREATE statement). Built once; existing duplicates stop the run.
UNIQUE_INDEXES = (
    ("ux_esputnik_token_ledger_live", "esputnik_token_ledger", "unique_ledger_live.sql"),
    ("ux_esputnik_stage_new_token", "esputnik_stage_new", "unique_stage_new.sql"),
)


class StateSchemaError(RuntimeError):
    """The state tables hold data this version cannot take as it is; the message says what."""


def ensure_state_schema(engine: Engine) -> None:
    """Create the state tables if absent and add newer columns to older ones; safe to call at
    the start of every run."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Concurrent CREATE ... IF NOT EXISTS can still collide in PostgreSQL's catalog:
            # runs starting together take turns (the lock ends with the transaction).
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        for statement in split_statements(load_sql("state_schema.sql")):
            conn.execute(text(statement))
        for table, column, sql_type in ADDED_COLUMNS:
            present = {c["name"] for c in inspect(conn).get_columns(table)}
            if column not in present:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))
        for index, table, script in UNIQUE_INDEXES:
            if index in {i["name"] for i in inspect(conn).get_indexes(table)}:
                continue
            count_duplicates, create = split_statements(load_sql(script))
            duplicated = int(conn.execute(text(count_duplicates)).scalar_one())
            if duplicated:
                raise StateSchemaError(
                    f"{table} holds {duplicated:,} tokens more than once where one row is "
                    f"allowed ({script}), so the unique index {index} cannot be built; keep one "
                    "row per token, then run again"
                )
            conn.execute(text(create))


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


def _insert_sqlite(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """One executemany straight on the sqlite3 cursor, with plain Python values.

    Going through pandas' ``to_sql`` and SQLAlchemy's per-row parameter processing cost more
    than the insert itself; timestamps are written in SQLAlchemy's own text format, so
    rows compare and read back the same whichever path wrote them.
    """
    frame = _naive_utc(frame)
    columns = {}
    for name, values in frame.items():
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


def delete_batch(conn: Connection, table: str, batch_id: str) -> None:
    """Drop one batch's rows from a staging table (re-execution starts clean)."""
    if table not in STAGE_TABLES:
        raise ValueError(f"{table} is not a staging table")
    conn.execute(text(f"DELETE FROM {table} WHERE batch_id = :batch_id"), {"batch_id": batch_id})


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
    params = {"batch_id": batch_id, "app_uuid": app_uuid}
    and_not_pushed = f"AND NOT {raw_row_pushed('e')}" if recheck_ledger else ""
    query = render_sql("read_unpushed_extract.sql", and_not_pushed=and_not_pushed)
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
    return frame.astype({c: "string[pyarrow]" for c in frame.columns if c != "source_row"}).astype(
        {"source_row": "int64"}
    )


def read_settled(engine: Engine, app_uuid: str, rules: str) -> set[tuple[str, int]]:
    """Token groups refused before under ``rules`` (see core/settled.py)."""
    query = (
        "SELECT token, group_hash FROM esputnik_settled_rejects"
        " WHERE app_uuid = :app_uuid AND rules = :rules"
    )
    params = {"app_uuid": app_uuid, "rules": rules}
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            with sqlite_cursor(conn, query, params) as cursor:
                return settled_pairs(cursor)
        return settled_pairs(conn.execute(text(query), params))


def count_batch(engine: Engine, table: str, batch_id: str) -> int:
    if table not in STAGE_TABLES:
        raise ValueError(f"{table} is not a staging table")
    with engine.connect() as conn:
        query = text(f"SELECT COUNT(*) FROM {table} WHERE batch_id = :batch_id")
        return int(conn.execute(query, {"batch_id": batch_id}).scalar_one())


def stage_new_tokens(engine: Engine, batch_id: str, app_uuid: str) -> int:
    """Fill ``esputnik_stage_new`` for a batch by anti-joining the ledger; return its size."""
    with engine.begin() as conn:
        delete_batch(conn, "esputnik_stage_new", batch_id)
        conn.execute(
            text(valid_row_sql("diff_new_tokens.sql", "v")),
            {"batch_id": batch_id, "app_uuid": app_uuid},
        )
    return count_batch(engine, "esputnik_stage_new", batch_id)


def count_quarantined(engine: Engine, batch_id: str, app_uuid: str) -> int:
    """Valid rows of the batch held back by an earlier 400 on the same identifiers."""
    with engine.connect() as conn:
        params = {"batch_id": batch_id, "app_uuid": app_uuid}
        return int(
            conn.execute(text(valid_row_sql("count_quarantined.sql", "v")), params).scalar_one()
        )


def recent_new_tokens(engine: Engine, app_uuid: str, batch_id: str, runs: int) -> list[int]:
    """tokens_new of the app's last ``runs`` finished runs, newest first."""
    params = {"app_uuid": app_uuid, "batch_id": batch_id, "runs": runs}
    with engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(text(load_sql("recent_new_tokens.sql")), params)]


# The asset-facing description of the ledger_no_duplicates check: what it can and cannot see.
LEDGER_CHECK_DESCRIPTION = (
    "Counts the tokens this run set out to send that the ledger holds live more than once for "
    "the app. The unique index ux_esputnik_token_ledger_live already refuses such a row, so "
    "this check can only fail on a ledger written without the index. It cannot see copies "
    "eSputnik holds that the ledger does not record: a chunk resent after an answer was lost "
    "(at most two copies of a token; those still unresolved are counted as tokens in doubt), "
    "or a chunk in flight when a run was killed."
)


def ledger_duplicates(engine: Engine, app_uuid: str, batch_id: str) -> int:
    """Tokens of the batch recorded live more than once for the app: should always be zero."""
    with engine.connect() as conn:
        query = text(load_sql("ledger_duplicates.sql"))
        params = {"app_uuid": app_uuid, "batch_id": batch_id}
        return int(conn.execute(query, params).scalar_one())


def quarantine_token(engine: Engine, app_uuid: str, run_id: str, row: dict, reason: str) -> None:
    """Keep a token eSputnik refused on its own, so it is not resent while unchanged."""
    entry = pd.DataFrame(
        [
            {
                "app_uuid": app_uuid,
                "token": row["token"],
                "fingerprint": row["fingerprint"],
                "reason": reason[:1000],
                "run_id": run_id,
                "quarantined_at": utc_now(),
            }
        ]
    )
    with engine.begin() as conn:
        append_frame(conn, "esputnik_token_quarantine", entry)


def count_pending(engine: Engine, batch_id: str, app_uuid: str) -> int:
    """How many rows ``pending_chunks`` will yield (read under the same push lock), tokens in
    doubt left out."""
    query = text(f"SELECT COUNT(*) FROM ({valid_row_sql('pending_tokens.sql', 'n')}) pending")
    with engine.connect() as conn:
        params = {"batch_id": batch_id, "app_uuid": app_uuid}
        return int(conn.execute(query, params).scalar_one())


def pending_chunks(
    engine: Engine, batch_id: str, app_uuid: str, chunk_size: int
) -> Iterator[list[dict]]:
    """The batch's rows still absent from the ledger, ``chunk_size`` at a time, in token order.

    Each chunk is a keyed page (tokens after the last one read), a short statement of its own:
    a server-side cursor over the whole push held a PostgreSQL transaction open for hours. The
    token is the key because it is unique in a batch (ux_esputnik_stage_new_token); a page read
    later sees what the ledger gained meanwhile.
    """
    query = render_sql("pending_page.sql", pending=valid_row_sql("pending_tokens.sql", "n"))
    params: dict[str, object] = {"batch_id": batch_id, "app_uuid": app_uuid, "after": ""}
    params["page_size"] = chunk_size
    while True:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                with sqlite_cursor(conn, query, params) as cursor:
                    names = [column[0] for column in cursor.description]
                    page = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            else:
                page = [dict(row) for row in conn.execute(text(query), params).mappings()]
        if not page:
            return
        yield page
        params["after"] = page[-1]["token"]


LEDGER = "esputnik_token_ledger"
LEDGER_COLUMNS = (
    "app_uuid",
    "token",
    "contact_id",
    "external_customer_id",
    "phone",
    "email",
    "pushed_at",
    "run_id",
    "chunk_no",
)


def _plain(value: object) -> object:
    """None for missing values, Python ints for numpy ones: what every DB driver binds."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return int(value) if hasattr(value, "item") and not isinstance(value, str) else value


def ledger_rows(app_uuid: str, run_id: str, chunk_no: int, rows: Sequence[dict]) -> list[dict]:
    """The ledger rows of one chunk, built before it is sent so nothing can fail after."""
    return [
        {
            "app_uuid": app_uuid,
            "token": row["token"],
            "contact_id": _plain(row.get("contact_id")),
            "external_customer_id": _plain(row.get("external_customer_id")),
            "phone": _plain(row.get("phone")),
            "email": _plain(row.get("email")),
            "run_id": run_id,
            "chunk_no": chunk_no,
        }
        for row in rows
    ]


def record_chunk(
    engine: Engine,
    ledger: list[dict],
    resolved: Sequence[str] = (),
    pushed_at: datetime | None = None,
) -> None:
    """Write one accepted chunk to the ledger in its own transaction, with the in-doubt rows
    of its ``resolved`` tokens (sent again after a lost answer) removed in the same one.

    The push waits for this before its next request, hence ``_write_tuples``: on psycopg 3 its
    COPY took a third of the time of an executemany of 1,000 rows, commit included.
    """
    moment = pushed_at or utc_now()
    stamp = moment.isoformat(sep=" ") if engine.dialect.name == "sqlite" else moment
    rows = [tuple((row | {"pushed_at": stamp})[c] for c in LEDGER_COLUMNS) for row in ledger]
    with engine.begin() as conn:
        _write_tuples(conn, LEDGER, LEDGER_COLUMNS, rows)
        if resolved and ledger:  # the rows go with the ledger rows: same transaction
            conn.execute(
                text(
                    "DELETE FROM esputnik_token_in_doubt"
                    " WHERE app_uuid = :app_uuid AND token = :token"
                ),
                [{"app_uuid": ledger[0]["app_uuid"], "token": token} for token in resolved],
            )


def purge_stale_batches(engine: Engine, older_than: datetime) -> None:
    """Forget staging rows of batches whose last validated event predates ``older_than``.

    Staging rows stay after a run so that a re-execution from failure can resume; a week later
    they are only clutter.
    """
    cutoff = db_timestamp(engine, older_than)
    with engine.begin() as conn:
        for statement in split_statements(load_sql("purge_stale_batches.sql")):
            conn.execute(text(statement), {"cutoff": cutoff})


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


def events_cursor(engine: Engine, app_uuid: str, latest: datetime) -> datetime | None:
    """Latest occurred_at already handled for the app, no later than ``latest`` (now plus the
    tolerance): derived, so it can never drift, and a future-dated row cannot move it."""
    params = {"app_uuid": app_uuid, "latest": db_timestamp(engine, latest)}
    with engine.connect() as conn:
        value = conn.execute(text(load_sql("events_cursor.sql")), params).scalar()
    if value is None:
        return None
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


def handled_event_keys(engine: Engine, app_uuid: str, since: datetime) -> set[str]:
    """Keys of the events handled from ``since`` on: as stored, and rebuilt from the stored
    columns in today's canonical form (keys stored by older versions still match)."""
    params = {"app_uuid": app_uuid, "since": db_timestamp(engine, since)}
    with engine.connect() as conn:
        handled = pd.read_sql(text(load_sql("handled_event_keys.sql")), conn, params=params)
    keys = set(handled["event_key"])
    dated = handled[handled["occurred_at"].notna()]
    if len(dated):
        keys |= set(event_keys(dated))
    return keys


@dataclass(frozen=True)
class EventsIngest:
    """What the previous ingest left for the next: where to read from, and the source's counts
    then."""

    next_from: datetime
    rows_before_next_from: int
    undated_rows: int


def last_events_ingest(engine: Engine, app_uuid: str) -> EventsIngest | None:
    with engine.connect() as conn:
        row = conn.execute(text(load_sql("last_events_ingest.sql")), {"app_uuid": app_uuid}).first()
    if row is None:
        return None
    next_from = pd.Timestamp(row.next_from).to_pydatetime().replace(tzinfo=None)
    return EventsIngest(next_from, int(row.rows_before_next_from), int(row.undated_rows))


def record_events_ingest(
    engine: Engine, app_uuid: str, run_id: str, ingest: EventsIngest, now: datetime
) -> None:
    entry = {
        "app_uuid": app_uuid,
        "run_id": run_id,
        "ingested_at": now,
        "next_from": ingest.next_from,
        "rows_before_next_from": ingest.rows_before_next_from,
        "undated_rows": ingest.undated_rows,
    }
    with engine.begin() as conn:
        append_frame(conn, "esputnik_events_ingests", pd.DataFrame([entry]))


def ingest_checked_events(
    engine: Engine, app_uuid: str, run_id: str, checked: CheckedEvents, handled: set[str]
) -> dict[str, int]:
    """Record the refusals and apply the events among ``checked`` not in ``handled``; their
    keys join ``handled``. Counts by outcome; rejections by the word before their colon."""
    good = checked.good[~checked.good["event_key"].isin(handled)].drop_duplicates("event_key")
    bad = checked.bad[~checked.bad["event_key"].isin(handled)].drop_duplicates("event_key")
    bad = bad[~bad["event_key"].isin(good["event_key"])]
    with engine.begin() as conn:
        append_frame(
            conn,
            "esputnik_message_events_rejected",
            bad.assign(app_uuid=app_uuid, run_id=run_id, rejected_at=utc_now()),
        )
    applied = apply_message_events(engine, app_uuid, run_id, run_id, good)
    handled.update(good["event_key"], bad["event_key"])
    rejected = bad["rejection"].str.split(":").str[0].value_counts()
    return {
        "events_new": len(good) + len(bad),
        "events_processed": applied["processed"],
        "events_rejected_malformed": int(rejected.get("malformed", 0)),
        "events_rejected_unknown_status": int(rejected.get("unknown_status", 0)),
        "events_rejected_future": int(rejected.get(FUTURE, 0)),
        "events_rejected_unknown_token": applied["unknown_token"],
        "tokens_removed_by_esputnik": applied["tokens_removed"],
    }


def purge_expired(
    engine: Engine,
    app_uuid: str,
    now: datetime,
    *,
    rejects_days: int,
    events_days: int,
    quarantine_days: int,
    keep_events_from: datetime,
) -> dict[str, int]:
    """Delete what is past its retention: refused rows of the sync, handled message events
    (never at or after ``keep_events_from``, the next read's start), quarantined tokens (retried
    once forgotten) and old ingest records. The ledger is kept forever. Rows deleted per table."""
    params = {
        "app_uuid": app_uuid,
        "rejects_before": db_timestamp(engine, now - timedelta(days=rejects_days)),
        "events_before": db_timestamp(engine, now - timedelta(days=events_days)),
        "quarantine_before": db_timestamp(engine, now - timedelta(days=quarantine_days)),
        "keep_events_from": db_timestamp(engine, keep_events_from),
    }
    tables = (
        "esputnik_sync_rejects",
        "esputnik_message_events_processed",
        "esputnik_message_events_rejected",
        "esputnik_token_quarantine",
        "esputnik_events_ingests",
    )
    with engine.begin() as conn:
        statements = split_statements(load_sql("purge_expired.sql"))
        deleted = [conn.execute(text(statement), params).rowcount for statement in statements]
    return dict(zip(tables, deleted, strict=True))


def apply_message_events(
    engine: Engine, app_uuid: str, run_id: str, batch_id: str, events: pd.DataFrame
) -> dict[str, int]:
    """Record events, set aside unknown tokens, mark Forbidden tokens removed; one transaction."""
    params = {
        "app_uuid": app_uuid,
        "run_id": run_id,
        "batch_id": batch_id,
        "now": db_timestamp(engine, utc_now()),
    }
    counts = {"processed": 0, "unknown_token": 0, "tokens_removed": 0}
    with engine.begin() as conn:
        delete_batch(conn, "esputnik_stage_events", batch_id)
        append_frame(conn, "esputnik_stage_events", events.assign(batch_id=batch_id))
        rejected, processed, removed = (
            conn.execute(text(statement), params).rowcount
            for statement in split_statements(load_sql("apply_message_events.sql"))
        )
        delete_batch(conn, "esputnik_stage_events", batch_id)
    counts.update(processed=processed, unknown_token=rejected, tokens_removed=removed)
    return counts


def delivery_counts(engine: Engine, app_uuid: str, since: datetime) -> pd.DataFrame:
    params = {"app_uuid": app_uuid, "since": db_timestamp(engine, since)}
    with engine.connect() as conn:
        return pd.read_sql(text(load_sql("delivery_daily.sql")), conn, params=params)


def replace_delivery_days(engine: Engine, app_uuid: str, daily: pd.DataFrame) -> None:
    """Rewrite the per-day figures of the days in ``daily``."""
    with engine.begin() as conn:
        for day in daily["day"]:
            conn.execute(
                text("DELETE FROM esputnik_delivery_daily WHERE app_uuid = :app AND day = :day"),
                {"app": app_uuid, "day": day},
            )
        append_frame(
            conn,
            "esputnik_delivery_daily",
            daily.assign(app_uuid=app_uuid, computed_at=utc_now()),
        )


def read_run_record(engine: Engine, batch_id: str) -> dict[str, object]:
    """The batch's row of ``esputnik_sync_runs`` (the extract's counts, for later steps)."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM esputnik_sync_runs WHERE batch_id = :batch_id"),
            {"batch_id": batch_id},
        ).one()
    return dict(row._mapping)
