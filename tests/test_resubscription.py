"""Blocked bots and re-subscriptions, end to end on SQLite and PostgreSQL.

Push; eSputnik reports FAILED/Forbidden for some tokens; the ingest marks them removed; some of
those subscribers come back; the next sync pushes exactly those again, once.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from dagster_project.warehouse_seed import land_message_events
from tests.helpers import (
    add_subscribers,
    last_metadata,
    run_delivery,
    run_sync,
    sync_resources,
    token_counts,
    warehouse_engine,
)

A, B, C, D, E, F = TOKENS = ["101", "102", "103", "104", "105", "106"]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def live_tokens(sandbox) -> Counter:
    return Counter(
        t["token"] for t in sandbox.state.snapshot()["tokens"] if not t.get("removed_at")
    )


def test_blocked_then_returned_subscribers_are_pushed_again_once(warehouse_url, sandbox):
    engine = warehouse_engine(warehouse_url)
    add_subscribers(
        engine,
        *[
            {"chat_id": t, "phone": f"+38050123450{n}", "subscribed_at": "2026-01-10 10:00:00"}
            for n, t in enumerate(TOKENS)
        ],
    )
    resources = sync_resources(warehouse_url, sandbox)
    assert run_sync(resources).success

    now = datetime.now(UTC).replace(microsecond=0)
    failed_at, returned_at = now + timedelta(minutes=1), now + timedelta(hours=1)
    state = sandbox.state
    events = state.send_message("SENT", occurred_at=stamp(now + timedelta(seconds=30)))
    events += state.send_message("FAILED", "Forbidden", [A, B, C], occurred_at=stamp(failed_at))
    events += state.send_message("CLICKED", tokens=[D], occurred_at=stamp(failed_at))
    assert set(live_tokens(sandbox)) == {D, E, F}  # eSputnik dropped a, b, c
    bad = [
        {
            "token": D,
            "message_id": "m-x",
            "status": "BOUNCED",
            "reason": None,
            "occurred_at": stamp(now),
        },
        {
            "token": "999",
            "message_id": "m-x",
            "status": "SENT",
            "reason": None,
            "occurred_at": stamp(now),
        },
        {
            "token": None,
            "message_id": "m-x",
            "status": "SENT",
            "reason": None,
            "occurred_at": stamp(now),
        },
    ]
    land_message_events(engine, events + bad)

    # The users of a and b unblock the bot; c's is still blocked.
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE telegram_subscribers SET status = :status, status_changed_at = :at"
                " WHERE chat_id = :token"
            ),
            [
                {"status": "active", "at": stamp(returned_at), "token": A},
                {"status": "active", "at": stamp(returned_at), "token": B},
                {"status": "blocked", "at": stamp(now), "token": C},
            ],
        )

    ingest = run_delivery(resources)
    assert ingest.success
    figures = last_metadata(ingest, "esputnik_message_events_ingested")
    assert figures["events_processed"] == 6 + 3 + 1
    assert figures["tokens_removed_by_esputnik"] == 3
    assert figures["events_rejected_unknown_status"] == 1
    assert figures["events_rejected_unknown_token"] == 1
    assert figures["events_rejected_malformed"] == 1
    metrics = last_metadata(ingest, "esputnik_delivery_metrics")
    assert (metrics["sent"], metrics["failed_forbidden"], metrics["clicked"]) == (6, 3, 1)
    assert metrics["blocked_rate"] == 0.5 and metrics["click_rate"] == round(1 / 6, 4)
    with engine.connect() as conn:
        removed = conn.execute(
            text(
                "SELECT token, removal_reason FROM esputnik_token_ledger WHERE removed_at IS NOT NULL"
            )
        ).all()
    assert {r.token for r in removed} == {A, B, C}
    assert all("removed_by_esputnik" in r.removal_reason for r in removed)

    again = run_delivery(resources)  # nothing is processed twice
    assert last_metadata(again, "esputnik_message_events_ingested")["events_new"] == 0

    resync = run_sync(resources)
    assert resync.success
    assert last_metadata(resync, "esputnik_pushed_tokens")["tokens_pushed"] == 2
    assert token_counts(sandbox) == Counter({A: 2, B: 2, C: 1, D: 1, E: 1, F: 1})
    assert live_tokens(sandbox) == Counter(dict.fromkeys([A, B, D, E, F], 1))
    with engine.connect() as conn:
        pushes = Counter(
            r[0] for r in conn.execute(text("SELECT token FROM esputnik_token_ledger"))
        )
    assert pushes == Counter({A: 2, B: 2, C: 1, D: 1, E: 1, F: 1})  # history kept

    assert last_metadata(run_sync(resources), "esputnik_pushed_tokens")["tokens_pushed"] == 0
