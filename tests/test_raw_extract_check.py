"""The raw-extract expectations: drift in what the warehouse hands over warns on
``validated_subscribers`` without stopping the sync, and shows no phone number or email."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from dagster_project.core.extract_expectations import (
    NO_ROWS,
    RawBounds,
    check_raw_frame,
    raw_frame,
)
from tests.helpers import (
    add_contacts,
    add_subscribers,
    run_sync,
    sync_resources,
    token_counts,
    warehouse_engine,
)

AT = "2026-01-10 10:00:00"


def raw_check(result):
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "raw_extract_expectations"
    ]
    return evaluation, {key: value.value for key, value in evaluation.metadata.items()}


def drifted_warehouse(url: str):
    """A warehouse whose subscriber table allows a missing chat id and longer statuses (the
    CRM changed under the sync): one row without a chat id, statuses nobody told the sync
    about (one holding an email, as after a column shift), few phones and emails."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE telegram_subscribers (chat_id VARCHAR(64), customer_id VARCHAR(64),"
                " phone VARCHAR(64), status VARCHAR(64), subscribed_at TIMESTAMP NOT NULL,"
                " status_changed_at TIMESTAMP)"
            )
        )
    engine = warehouse_engine(url)
    add_contacts(engine, {"customer_id": "C-1", "email": "ann@example.com"})
    add_subscribers(
        engine,
        {"chat_id": "101", "customer_id": "C-1", "status": " Active ", "subscribed_at": AT},
        {"chat_id": "102", "phone": "0501234567", "subscribed_at": AT},
        {"chat_id": "103", "status": "paused", "subscribed_at": AT},
        {"chat_id": "104", "status": "bob@example.org", "subscribed_at": AT},
        {"chat_id": "105", "subscribed_at": AT},
        {"chat_id": None, "phone": "0501234568", "subscribed_at": AT},
    )
    return engine


def test_drifted_raw_extract_warns_with_masked_samples_and_the_sync_goes_on(warehouse_url, sandbox):
    drifted_warehouse(warehouse_url)
    result = run_sync(sync_resources(warehouse_url, sandbox))
    assert result.success
    assert token_counts(sandbox) == {"101": 1, "102": 1}  # the rules still decide row by row

    evaluation, metadata = raw_check(result)
    assert not evaluation.passed
    assert evaluation.severity.value == "WARN"
    assert metadata["rows_checked"] == 6
    assert metadata["expectations_failed"] == 4
    assert (
        metadata["unexpected_chat_id"],
        metadata["unexpected_status"],
        metadata["unexpected_phone"],
        metadata["unexpected_email"],
    ) == (1, 2, 4, 5)
    assert (metadata["phone_share"], metadata["email_share"]) == (round(2 / 6, 4), round(1 / 6, 4))
    assert (metadata["min_phone_share"], metadata["min_email_share"]) == (0.5, 0.2)
    failed = {row.data["column"]: row.data for row in metadata["failed_expectations"].records}
    assert set(failed) == {"chat_id", "status", "phone", "email"}
    assert failed["status"]["sample"] == "'paused', 'b***@example.org'"
    assert failed["phone"]["unexpected_rows"] == 4 and failed["phone"]["sample"] == ""
    shown = str(metadata) + evaluation.description
    assert "bob@" not in shown and "ann@" not in shown and "1234567" not in shown


def test_clean_raw_extract_passes_and_a_rerun_checks_nothing(sqlite_url, sandbox):
    engine = warehouse_engine(sqlite_url)
    add_contacts(
        engine,
        {"customer_id": "C-1", "email": "a@example.com", "phone": "0501234567"},
        {"customer_id": "C-2", "email": "b@example.com"},
    )
    add_subscribers(
        engine,
        {"chat_id": "201", "customer_id": "C-1", "subscribed_at": AT},
        {"chat_id": "202", "customer_id": "C-2", "phone": "0501234569", "subscribed_at": AT},
        {"chat_id": "203", "status": "BLOCKED", "phone": "0501234570", "subscribed_at": AT},
    )
    resources = sync_resources(sqlite_url, sandbox)
    evaluation, metadata = raw_check(run_sync(resources))
    assert evaluation.passed
    assert metadata["rows_checked"] == 3 and metadata["expectations_failed"] == 0
    assert (metadata["phone_share"], metadata["email_share"]) == (1.0, round(2 / 3, 4))

    with engine.begin() as conn:  # the only row left unpushed (blocked) leaves the warehouse
        conn.execute(text("DELETE FROM telegram_subscribers WHERE chat_id = '203'"))
    rerun, metadata = raw_check(run_sync(resources))  # nothing staged: nothing to check
    assert rerun.passed
    assert metadata["rows_checked"] == 0 and metadata["expectations_evaluated"] == 4
    assert "phone_share" not in metadata


@pytest.mark.parametrize(
    ("bounds", "failed"),
    [
        (RawBounds(0.5, 0.5), set()),
        (RawBounds(0.75, 0.5), {"phone"}),
        (RawBounds(0.5, 0.75), {"email"}),
    ],
)
def test_share_bounds_are_mostly_over_present_values(bounds, failed):
    """Blank text counts as missing; the bot's phone stands in for the CRM's."""
    raw = pd.DataFrame(
        {
            "chat_id": ["1", "2", "3", "4"],
            "status": ["active", "blocked", " ACTIVE", "Blocked "],
            "crm_phone": ["0501", None, "  ", None],
            "bot_phone": [None, "0502", None, None],
            "crm_email": ["a@x.io", " ", "b@x.io", None],
        },
        dtype="string",
    )
    outcome = check_raw_frame(raw_frame(raw), bounds).outcome
    assert {e.column for e in outcome.failed} == failed


def test_no_rows_hold_every_expectation():
    """(That they do so without importing GX: test_expectations.py, in a fresh interpreter.)"""
    checked = check_raw_frame(raw_frame(NO_ROWS), RawBounds(1.0, 1.0))
    assert checked.rows == 0 and checked.outcome.success
    assert [e.column for e in checked.outcome.expectations] == [
        "chat_id",
        "status",
        "phone",
        "email",
    ]
