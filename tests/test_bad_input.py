"""Bad input costs its own row or identifier, with a reason, and never the run: chat ids stored
as numbers, bytes that are not UTF-8, timestamps SQLite cannot compare."""

import sqlite3

from sqlalchemy import text

from tests.helpers import (
    add_contacts,
    add_subscribers,
    last_metadata,
    run_sync,
    sent_identifiers,
    sync_resources,
    token_counts,
    warehouse_engine,
)


def check(result, name):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def test_a_byte_that_is_not_utf8_costs_its_field_or_row_not_the_run(sqlite_url, sandbox):
    engine = warehouse_engine(sqlite_url)
    add_contacts(engine, {"customer_id": "C-1", "email": "a@example.com", "phone": "0501234567"})
    add_subscribers(
        engine,
        {"chat_id": "101", "customer_id": "C-1", "subscribed_at": "2026-01-01 00:00:00"},
        {"chat_id": "102", "phone": "0501234568", "subscribed_at": "2026-01-01 00:00:00"},
        {"chat_id": "103", "phone": "0501234569", "subscribed_at": "2026-01-01 00:00:00"},
    )
    with sqlite3.connect(sqlite_path(sqlite_url)) as con:  # 'a\xff@x.com', '10\xff4'
        con.execute("UPDATE crm_contacts SET email = CAST(X'61FF40782E636F6D' AS TEXT)")
        con.execute(
            "UPDATE telegram_subscribers SET chat_id = CAST(X'3130FF34' AS TEXT)"
            " WHERE chat_id = '103'"
        )
    result = run_sync(sync_resources(sqlite_url, sandbox))
    assert result.success
    assert token_counts(sandbox) == {"101": 1, "102": 1}
    assert sent_identifiers(sandbox)["101"] == {
        "externalCustomerId": "C-1",
        "phone": "380501234567",
    }
    with engine.connect() as conn:
        rejects = conn.execute(
            text("SELECT outcome, reason, detail FROM esputnik_sync_rejects ORDER BY reason")
        ).all()
    assert [(o, r) for o, r, _ in rejects] == [
        ("rejected", "invalid_chat_id"),
        ("identifier_dropped", "invalid_email"),
    ]
    assert all("not UTF-8" in detail and "x.com" not in detail for *_, detail in rejects)


def test_chat_ids_stored_as_numbers_become_integer_tokens_once(sqlite_url, sandbox):
    """pandas writes chat ids as floats when the column has a NULL; SQLite then holds REALs."""
    engine = warehouse_engine(sqlite_url)
    add_subscribers(
        engine,
        {"chat_id": "0", "phone": "0501234567", "subscribed_at": "2026-01-01 00:00:00"},
        {"chat_id": "0", "phone": "0501234568", "subscribed_at": "2026-01-02 00:00:00"},
        {"chat_id": "0", "phone": "0501234569", "subscribed_at": "2026-01-03 00:00:00"},
    )
    with sqlite3.connect(sqlite_path(sqlite_url)) as con:
        con.execute(
            "UPDATE telegram_subscribers SET chat_id = CASE phone"
            " WHEN '0501234567' THEN 900000001.0 WHEN '0501234568' THEN -1001234567890"
            " ELSE 12.5 END"
        )
    resources = sync_resources(sqlite_url, sandbox)
    first = run_sync(resources)
    assert first.success
    assert token_counts(sandbox) == {"900000001": 1, "-1001234567890": 1}
    assert last_metadata(first, "validated_subscribers")["rejected_invalid_chat_id"] == 1
    again = run_sync(resources)
    assert last_metadata(again, "esputnik_pushed_tokens")["tokens_pushed"] == 0
    assert sum(token_counts(sandbox).values()) == 2


def test_timestamps_sqlite_cannot_compare_are_reported(sqlite_url, sandbox):
    engine = warehouse_engine(sqlite_url)
    add_subscribers(
        engine,
        {"chat_id": "201", "phone": "0501234567", "subscribed_at": "2026-01-01 00:00:00"},
        {"chat_id": "202", "phone": "0501234568", "subscribed_at": "2026-01-02T00:00:00+02:00"},
    )
    with sqlite3.connect(sqlite_path(sqlite_url)) as con:
        con.execute(
            "INSERT INTO telegram_subscribers (chat_id, phone, status, subscribed_at)"
            " VALUES ('203', '0501234569', 'active', 1767225600)"
        )
    result = run_sync(sync_resources(sqlite_url, sandbox))
    assert result.success  # the readable rows still go through
    assert "201" in token_counts(sandbox)
    verdict = check(result, "subscriber_timestamps")
    assert not verdict.passed and verdict.metadata["rows"].value == 2
    assert last_metadata(result, "subscriber_extract")["rows_unreadable_timestamps"] == 2
