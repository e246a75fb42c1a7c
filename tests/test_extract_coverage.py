"""The range's coverage counts behind the identifier-completeness guard, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster_project.core.db import load_sql
from dagster_project.core.extract import extract_coverage
from tests.helpers import add_contacts, add_subscribers, warehouse_engine

QUERY = load_sql("extract_subscribers.sql")  # the default extract, as the resource loads it
WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
IN_RANGE = "2026-01-10 08:00:00"


def test_coverage_counts_each_kind_of_row(warehouse_url):
    engine = warehouse_engine(warehouse_url)
    add_contacts(engine, {"customer_id": "C-1"}, {"customer_id": "C-2", "phone": "0501"})
    add_subscribers(
        engine,
        # active, CRM-linked (twice: the counts are per row, not per token)
        {"chat_id": "1", "customer_id": "C-1", "subscribed_at": IN_RANGE},
        {"chat_id": "1", "customer_id": "C-1", "status": " Active ", "subscribed_at": IN_RANGE},
        # active, no CRM contact (unknown customer id), a phone shared with the bot
        {"chat_id": "2", "customer_id": "C-404", "phone": "0502", "subscribed_at": IN_RANGE},
        # active, no CRM contact and no usable phone: no identifier candidate at all
        {"chat_id": "3", "subscribed_at": IN_RANGE},
        {"chat_id": "4", "phone": "   ", "subscribed_at": IN_RANGE},
        # not counted as active: blocked, an unknown status, a blank chat id
        {"chat_id": "5", "customer_id": "C-2", "status": "blocked", "subscribed_at": IN_RANGE},
        {"chat_id": "6", "status": "paused", "subscribed_at": IN_RANGE},
        {"chat_id": "  ", "customer_id": "C-2", "subscribed_at": IN_RANGE},
        # outside the range: not counted at all
        {"chat_id": "7", "subscribed_at": "2026-02-01 00:00:00"},
    )
    assert extract_coverage(engine, QUERY, WINDOW) == {
        "rows_extracted": 8,
        "active_rows": 5,
        "rows_without_identifier": 2,
        "rows_without_crm_link": 3,
    }


def test_coverage_of_an_empty_range_is_all_zero(warehouse_url):
    engine = warehouse_engine(warehouse_url)
    assert extract_coverage(engine, QUERY, WINDOW) == {
        "rows_extracted": 0,
        "active_rows": 0,
        "rows_without_identifier": 0,
        "rows_without_crm_link": 0,
    }
