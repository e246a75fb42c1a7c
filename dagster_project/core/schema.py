"""The state tables and every migration of them, in one place: ``sql/state_schema.sql``
creates what is missing, then newer columns and unique indexes are added to older tables."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, inspect, text

from dagster_project.core.db import load_sql, split_statements
from dagster_project.core.locks import advisory_key

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


# Views holding a rule several statements share: (view, sql file with its CREATE VIEW). Created
# when missing (PostgreSQL has no CREATE VIEW IF NOT EXISTS); a changed definition ships under a
# new view name, so an older view is never read by a newer statement.
VIEWS = (("esputnik_ledger_live", "ledger_live_view.sql"),)


# Tables whose layout changed in a way ALTER TABLE cannot follow: (table, a column only the old
# layout has). They hold one run's working rows only, so the old table is dropped and created
# anew; a batch staged before the upgrade is diffed again by the next run.
RELAID_TABLES = (("esputnik_stage_new", "fingerprint"),)


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
        tables = set(inspect(conn).get_table_names())
        for table, old_column in RELAID_TABLES:
            if table in tables and old_column in _columns(conn, table):
                conn.execute(text(f"DROP TABLE {table}"))
        for statement in split_statements(load_sql("state_schema.sql")):
            conn.execute(text(statement))
        for table, column, sql_type in ADDED_COLUMNS:
            if column not in _columns(conn, table):
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
        present_views = set(inspect(conn).get_view_names())
        for view, script in VIEWS:
            if view not in present_views:
                conn.execute(text(load_sql(script)))


def _columns(conn: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table)}
