"""The reference warehouse schema serves the default extract from one index."""

from __future__ import annotations

from sqlalchemy import text

from dagster_project.core.db import load_sql
from tests.helpers import warehouse_engine


def test_default_extract_reads_the_window_from_the_covering_index(sqlite_url):
    """A column added to the extract but not to ix_telegram_subscribers_window would turn the
    window into one random table read per row; SQLite's plan shows whether it still covers."""
    engine = warehouse_engine(sqlite_url)
    params = {"window_start": "2026-01-01 00:00:00", "window_end": "2026-02-01 00:00:00"}
    with engine.connect() as conn:
        plan = [
            row[-1]
            for row in conn.execute(
                text("EXPLAIN QUERY PLAN " + load_sql("extract_subscribers.sql")), params
            )
        ]
    subscribers = [step for step in plan if step.startswith(("SEARCH s ", "SCAN s"))]
    assert subscribers == [
        "SEARCH s USING COVERING INDEX ix_telegram_subscribers_window "
        "(subscribed_at>? AND subscribed_at<?)"
    ], plan
