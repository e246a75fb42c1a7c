"""State tables: the ledger check counts the run's own tokens held live twice, older tables
gain newer columns and indexes, and frames written to them read back as written; on both
databases."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from dagster_project.core.db import append_frame, load_sql, utc_now
from dagster_project.core.ledger import ledger_duplicates, ledger_rows, record_chunk
from dagster_project.core.schema import StateSchemaError, ensure_state_schema
from dagster_project.core.staging import compact_extract, read_unpushed_extract
from dagster_project.resources import WarehouseResource

APP = "app-1"


def test_counts_only_this_batchs_tokens_held_live_twice(warehouse_url):
    """On a ledger written without the unique index (the only place duplicates can be)."""
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ux_esputnik_token_ledger_live"))
        conn.execute(
            text("INSERT INTO esputnik_stage_new (batch_id, token) VALUES (:batch_id, :token)"),
            [
                {"batch_id": "b1", "token": "t1"},
                {"batch_id": "b1", "token": "t2"},
                {"batch_id": "b2", "token": "t3"},
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


def test_state_schema_adds_newer_columns_to_an_older_run_table(warehouse_url):
    engine = create_engine(warehouse_url)
    with engine.begin() as conn:  # the run table as first released, without the push timings
        conn.execute(
            text(
                "CREATE TABLE esputnik_sync_runs (batch_id TEXT PRIMARY KEY, run_id TEXT NOT NULL,"
                " app_uuid TEXT NOT NULL, window_start TIMESTAMP NOT NULL,"
                " window_end TIMESTAMP NOT NULL, started_at TIMESTAMP NOT NULL,"
                " finished_at TIMESTAMP, status TEXT NOT NULL, push_seconds DOUBLE PRECISION)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO esputnik_sync_runs VALUES ('b0', 'r0', :app, '2026-01-01',"
                " '2026-01-02', '2026-01-02', NULL, 'succeeded', 1.5)"
            ),
            {"app": APP},
        )
    ensure_state_schema(engine)
    ensure_state_schema(engine)  # and again: nothing left to add
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT push_seconds, sending_seconds, requests_per_second_limit"
                " FROM esputnik_sync_runs WHERE batch_id = 'b0'"
            )
        ).one()
    assert tuple(row) == (1.5, None, None)
    engine.dispose()


def test_state_schema_replaces_the_older_ledger_index(warehouse_url):
    engine = create_engine(warehouse_url)
    with engine.begin() as conn:  # the ledger as first released, with its (app, token) index
        conn.execute(
            text(
                "CREATE TABLE esputnik_token_ledger (app_uuid TEXT NOT NULL, token TEXT NOT NULL,"
                " contact_id BIGINT, external_customer_id TEXT, phone TEXT, email TEXT,"
                " pushed_at TIMESTAMP NOT NULL, run_id TEXT NOT NULL, chunk_no INTEGER NOT NULL,"
                " removed_at TIMESTAMP, removal_reason TEXT)"
            )
        )
        conn.execute(
            text(
                "CREATE INDEX ix_esputnik_token_ledger_token"
                " ON esputnik_token_ledger (app_uuid, token)"
            )
        )
    ensure_state_schema(engine)
    ensure_state_schema(engine)
    indexes = {
        index["name"]: index["column_names"]
        for index in inspect(engine).get_indexes("esputnik_token_ledger")
    }
    assert indexes == {
        "ix_esputnik_token_ledger_live": ["token", "app_uuid", "removed_at"],
        "ux_esputnik_token_ledger_live": ["app_uuid", "token"],
    }
    engine.dispose()


def insert_ledger(conn, *rows: dict) -> None:
    conn.execute(
        text(
            "INSERT INTO esputnik_token_ledger (app_uuid, token, pushed_at, run_id, chunk_no,"
            " removed_at) VALUES (:app, :token, '2026-01-05 10:00:00', 'r', 1, :removed_at)"
        ),
        [{"app": APP, "removed_at": None} | row for row in rows],
    )


def test_the_database_refuses_a_second_live_row_per_token(warehouse_url):
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    with engine.begin() as conn:
        insert_ledger(
            conn,
            {"token": "t1", "removed_at": "2026-01-06 10:00:00"},
            {"token": "t1"},  # pushed again after eSputnik dropped it: allowed
            {"token": "t1", "app": "app-2"},  # another app: allowed
        )
        conn.execute(
            text(
                "INSERT INTO esputnik_stage_new (batch_id, token) VALUES ('b1', 't1'), ('b2', 't1')"
            )
        )
    for statement in (
        "INSERT INTO esputnik_token_ledger (app_uuid, token, pushed_at, run_id, chunk_no)"
        " VALUES ('app-1', 't1', '2026-01-07 10:00:00', 'r2', 1)",
        "INSERT INTO esputnik_stage_new (batch_id, token) VALUES ('b1', 't1')",
    ):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(statement))
    engine.dispose()


def test_an_older_ledger_with_duplicates_stops_the_migration_naming_the_count(warehouse_url):
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    with engine.begin() as conn:  # a ledger as older versions left it: no unique index
        conn.execute(text("DROP INDEX ux_esputnik_token_ledger_live"))
        insert_ledger(conn, {"token": "t1"}, {"token": "t1"}, {"token": "t2"}, {"token": "t2"})
    with pytest.raises(StateSchemaError, match="esputnik_token_ledger holds 2 tokens more"):
        ensure_state_schema(engine)
    with engine.begin() as conn:  # one row kept per token: the index is built
        conn.execute(text("DELETE FROM esputnik_token_ledger WHERE token = 't2'"))
        conn.execute(text("DELETE FROM esputnik_token_ledger WHERE token = 't1'"))
        insert_ledger(conn, {"token": "t1"})
    ensure_state_schema(engine)
    names = {i["name"] for i in inspect(engine).get_indexes("esputnik_token_ledger")}
    assert "ux_esputnik_token_ledger_live" in names
    engine.dispose()


def test_appended_frame_reads_back_as_written(warehouse_url):
    """Nulls of every kind become NULL, integers stay integers, an aware timestamp is stored
    as naive UTC, SQLite's text timestamps keep SQLAlchemy's format, and texts COPY must
    escape (or that look like its NULL marker) arrive as written."""
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    aware = datetime(2026, 1, 5, 12, 30, 15, 250000, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "batch_id": ["b1", "b1"],
            "source_row": [1, 2],
            "token": pd.array(["t1", "t2"], dtype="string[pyarrow]"),
            "contact_id": pd.array([7, None], dtype="Int64"),
            "external_customer_id": ['c,"1"\t;\n', None],
            "phone": [float("nan"), "\\N"],
            "email": pd.array([None, "a@example.com"], dtype="string"),
            "fingerprint": ["f1", "f2"],
            "last_event_at": pd.Series([aware, pd.NaT], dtype="datetime64[ns, UTC]"),
        }
    )
    with engine.begin() as conn:
        assert append_frame(conn, "esputnik_stage_valid", frame) == 2
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT source_row, token, contact_id, external_customer_id, phone, email,"
                " last_event_at FROM esputnik_stage_valid WHERE batch_id = 'b1'"
                " ORDER BY source_row"
            )
        ).all()
    sqlite = engine.dialect.name == "sqlite"
    assert rows[0][-1] == ("2026-01-05 12:30:15.250000" if sqlite else aware.replace(tzinfo=None))
    assert [tuple(r)[:-1] for r in rows] == [
        (1, "t1", 7, 'c,"1"\t;\n', None, None),
        (2, "t2", None, None, "\\N", "a@example.com"),
    ]
    assert rows[1][-1] is None
    engine.dispose()


@pytest.mark.parametrize(
    ("database", "driver"),
    [("sqlite", None), ("postgres", "postgresql+psycopg"), ("postgres", "postgresql+psycopg2")],
)
def test_recorded_chunk_reads_back_as_sent(request, database, driver):
    """Each driver's path (COPY on psycopg 3, plain tuples on sqlite3 and psycopg2) stores
    the chunk as sent: NULLs, numpy integers, and text COPY would have to escape."""
    url = make_url(request.getfixturevalue(f"{database}_url"))
    engine = create_engine(url.set(drivername=driver) if driver else url)
    ensure_state_schema(engine)
    sent = [
        {"token": "t1", "contact_id": np.int64(7), "external_customer_id": "c\t1\\x"},
        {"token": "t2", "phone": "380501234567", "email": "a@example.com"},
        {"token": "t3\nü", "contact_id": pd.NA, "external_customer_id": None, "phone": np.nan},
    ]
    before = utc_now().replace(microsecond=0)
    record_chunk(engine, ledger_rows("app-1", "run-1", 4, sent))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT app_uuid, token, contact_id, external_customer_id, phone, email, run_id,"
                " chunk_no, pushed_at, removed_at FROM esputnik_token_ledger ORDER BY token"
            )
        ).all()
    assert [tuple(r)[:8] for r in rows] == [
        ("app-1", "t1", 7, "c\t1\\x", None, None, "run-1", 4),
        ("app-1", "t2", None, None, "380501234567", "a@example.com", "run-1", 4),
        ("app-1", "t3\nü", None, None, None, None, "run-1", 4),
    ]
    pushed = {r.pushed_at for r in rows}
    assert len(pushed) == 1 and rows[0].removed_at is None
    stamp = pushed.pop()
    stamp = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
    assert before <= stamp <= utc_now()
    engine.dispose()


# Rows Arrow cannot build from the fetched bytes in one call: a byte that is not UTF-8 (that
# column is decoded value by value) and a number SQLite kept in a timestamp column (that chunk).
ODD_ROWS = {
    "none": [],
    "a byte that is not UTF-8": [
        "(5, CAST(X'3435FF' AS TEXT), 'c-5', 'active', CAST(X'61FF62' AS TEXT))"
    ],
    "a number in a timestamp column": ["(6, '46', 'c-6', 'active', 1767225600)"],
}


@pytest.mark.parametrize("odd", list(ODD_ROWS), ids=list(ODD_ROWS))
def test_sqlite_staged_rows_read_back_as_through_sqlalchemy(sqlite_url, odd):
    """On SQLite the rows go from sqlite3 straight into Arrow; the frame must be the one
    SQLAlchemy and pandas gave through the state engine's lenient text decoding (settled groups
    hash these values), pushed tokens left out."""
    engine = WarehouseResource(url=sqlite_url).state_engine()
    ensure_state_schema(engine)
    rows = [
        (1, 42, None, "+380 50 123 45 67", " Active ", "2026-01-05 12:30:15", None, 7, 123.0),
        (2, " 43 ", "c-2", None, "blocked", "2026-01-05 12:30:15.250000", "2026-01-06", None, 5),
        (3, "ü\t44", "c-3", 380501234567, None, None, None, "c-3", None),
        (4, "pushed", "c-4", None, "active", "2026-01-07 00:00:00", None, None, None),
    ]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO esputnik_stage_extract (batch_id, source_row, chat_id,"
            " subscriber_customer_id, bot_phone, status, subscribed_at, status_changed_at,"
            " crm_customer_id, esputnik_contact_id) VALUES ('b1', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        for values in ODD_ROWS[odd]:
            column = "crm_email" if "X'" in values else "subscribed_at"
            conn.exec_driver_sql(
                "INSERT INTO esputnik_stage_extract (batch_id, source_row, chat_id,"
                f" subscriber_customer_id, status, {column}) VALUES ('b1', {values[1:]}"
            )
    record_chunk(engine, ledger_rows("app-1", "run-1", 1, [{"token": "pushed", "email": "a@b.c"}]))
    query = load_sql("read_unpushed_extract.sql")
    with engine.connect() as conn:
        expected = compact_extract(
            pd.read_sql(
                text(query),
                conn,
                params={"batch_id": "b1", "app_uuid": "app-1", "recheck": 1},
                dtype_backend="numpy_nullable",
            )
        )
    got = read_unpushed_extract(engine, "b1", "app-1")
    assert got["source_row"].tolist() == [1, 2, 3, *(int(v[1]) for v in ODD_ROWS[odd])]
    pd.testing.assert_frame_equal(got, expected)
    if odd == "a byte that is not UTF-8":
        assert got[["chat_id", "crm_email"]].iloc[-1].tolist() == ["45\ufffd", "a\ufffdb"]
    engine.dispose()
