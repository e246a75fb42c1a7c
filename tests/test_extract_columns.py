"""The staged extract's columns are defined once, in core/columns.py. Every statement that must
name them to run as it stands is held to that list here, by running it or reading its lists."""

from __future__ import annotations

import re

from sqlalchemy import inspect, text

from dagster_project.core.columns import EXTRACT_COLUMNS, RAW_COLUMNS
from dagster_project.core.db import load_sql
from dagster_project.core.extract import CHANGE_COLUMNS
from dagster_project.core.schema import ensure_state_schema
from tests.helpers import warehouse_engine


def _names(listing: str) -> list[str]:
    """``a, q.b, c`` -> ``['a', 'b', 'c']``."""
    return [name.strip().split(".")[-1] for name in listing.split(",")]


def test_every_statement_names_the_columns_of_core_columns(warehouse_url):
    engine = warehouse_engine(warehouse_url)
    ensure_state_schema(engine)
    params = {"batch_id": "b", "app_uuid": "a", "recheck": 1}
    window = {"window_start": "1900-01-01", "window_end": "9999-12-31"}
    with engine.connect() as conn:
        extract = list(conn.execute(text(load_sql("extract_subscribers.sql")), window).keys())
        # the staged columns, then the optional change-cursor column
        assert extract == [*EXTRACT_COLUMNS, *(c for c in CHANGE_COLUMNS if c not in RAW_COLUMNS)]
        read_back = conn.execute(text(load_sql("read_unpushed_extract.sql")), params)
        assert list(read_back.keys()) == list(RAW_COLUMNS)
    staged = [c["name"] for c in inspect(engine).get_columns("esputnik_stage_extract")]
    assert staged == ["batch_id", *RAW_COLUMNS]

    stage = load_sql("stage_unpushed_extract.sql")
    into = re.search(r"INSERT INTO esputnik_stage_extract\s*\((.*?)\)\s*SELECT", stage, re.S)
    picked = re.search(r"SELECT :batch_id, ROW_NUMBER\(\) OVER \(\),(.*?)\bFROM \(", stage, re.S)
    assert into and picked, "stage_unpushed_extract.sql no longer has the shape this test reads"
    assert _names(into.group(1)) == ["batch_id", *RAW_COLUMNS]
    assert _names(picked.group(1)) == list(EXTRACT_COLUMNS)
