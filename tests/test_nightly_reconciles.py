"""Every nightly run reconciles every subscriber: what used to wait for a weekly full-range run
is pushed by the very next night, and a failed status ingest does not cost the night's sync."""

import time
from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance, materialize
from sqlalchemy import text

from dagster_project.assets import sync_assets
from dagster_project.delivery_assets import delivery_assets
from dagster_project.warehouse_seed import create_message_events_table, land_message_events
from tests.helpers import (
    add_contacts,
    add_subscribers,
    last_metadata,
    sent_identifiers,
    sync_resources,
    token_counts,
    warehouse_engine,
)


def run_nightly(resources: dict):
    """What the nightly schedule's job materializes: the status ingest, then the sync."""
    return materialize(
        [*delivery_assets, *sync_assets],
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def check_passed(result, name: str) -> bool:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name).passed


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# 9001 steady, 9002 late CRM link, 9003 no identifier yet, 9004 blocks and comes back,
# 9005 lands late with an old subscription date.
def test_the_next_night_pushes_what_only_a_full_run_used_to_find(warehouse_url, sandbox):
    engine = warehouse_engine(warehouse_url)
    create_message_events_table(engine)
    add_contacts(engine, {"customer_id": "C-OLD", "email": "old@example.com"})
    add_subscribers(
        engine,
        {"chat_id": "9001", "customer_id": "C-OLD", "subscribed_at": "2024-05-01 09:00:00"},
        # its CRM contact lands later
        {"chat_id": "9002", "customer_id": "C-LATE", "subscribed_at": "2022-02-02 10:00:00"},
        # no identifier at all yet
        {"chat_id": "9003", "subscribed_at": "2023-03-03 10:00:00"},
        # will block the bot, then come back
        {"chat_id": "9004", "phone": "0501110001", "subscribed_at": "2020-04-04 10:00:00"},
    )
    resources = sync_resources(warehouse_url, sandbox, settings={"max_no_identifier_share": 0.9})
    first = run_nightly(resources)
    assert first.success
    assert check_passed(first, "message_status_ingest")
    assert set(token_counts(sandbox)) == {"9001", "9004"}

    # During the day: a late load, a late CRM link, an identifier added, and a subscriber who
    # blocked the bot (eSputnik reports Forbidden and drops the token) and came back.
    add_subscribers(
        engine,
        {"chat_id": "9005", "phone": "0501110002", "subscribed_at": "2021-01-15 08:00:00"},
    )
    add_contacts(engine, {"customer_id": "C-LATE", "phone": "+380671110003"})
    # eSputnik's statuses come after the push; events dated past now are refused, so the day
    # is compressed into the seconds after the first run.
    pushed = datetime.now(UTC)
    time.sleep(2.5)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE telegram_subscribers SET phone = '0501110004' WHERE chat_id = '9003'")
        )
        conn.execute(
            text(
                "UPDATE telegram_subscribers SET status = 'active', status_changed_at = :at"
                " WHERE chat_id = '9004'"
            ),
            {"at": stamp(pushed + timedelta(seconds=2))},
        )
    events = sandbox.state.send_message("SENT", occurred_at=stamp(pushed + timedelta(seconds=1)))
    events += sandbox.state.send_message(
        "FAILED", "Forbidden", ["9004"], occurred_at=stamp(pushed + timedelta(seconds=1))
    )
    land_message_events(engine, events)
    assert "9004" not in {
        t["token"] for t in sandbox.state.snapshot()["tokens"] if not t.get("removed_at")
    }

    second = run_nightly(resources)
    assert second.success
    ingested = last_metadata(second, "esputnik_message_events_ingested")
    assert ingested["tokens_removed_by_esputnik"] == 1
    assert token_counts(sandbox) == {
        "9001": 1,
        "9004": 2,  # eSputnik dropped the first copy; the ledger keeps both pushes
        "9005": 1,
        "9002": 1,
        "9003": 1,
    }
    sent = sent_identifiers(sandbox)
    assert sent["9002"] == {"externalCustomerId": "C-LATE", "phone": "380671110003"}
    assert sent["9003"] == {"phone": "380501110004"}
    assert last_metadata(second, "esputnik_pushed_tokens")["tokens_pushed"] == 4

    third = run_nightly(resources)
    assert third.success
    assert last_metadata(third, "esputnik_pushed_tokens")["tokens_pushed"] == 0
    assert sum(token_counts(sandbox).values()) == 6


def test_a_failed_status_ingest_is_reported_and_the_sync_still_runs(sqlite_url, sandbox):
    """No esputnik_message_events table: the ingest fails, says why, and the sync goes on."""
    add_subscribers(
        warehouse_engine(sqlite_url),
        {"chat_id": "1", "phone": "0501234567", "subscribed_at": "2026-01-10 10:00:00"},
    )
    result = run_nightly(sync_resources(sqlite_url, sandbox))
    assert result.success
    check = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "message_status_ingest"
    )
    assert not check.passed
    assert "esputnik_message_events" in check.description
    assert last_metadata(result, "esputnik_message_events_ingested")["ingest_failed"] is True
    assert token_counts(sandbox) == {"1": 1}
