"""Message-event row checks and delivery figures, without Dagster."""

import pandas as pd

from dagster_project.core.events import blocked_rate_jump, check_events, daily_delivery


def events(*rows: dict) -> pd.DataFrame:
    base = {
        "token": "t",
        "message_id": "m",
        "status": "SENT",
        "reason": None,
        "occurred_at": "2026-02-01 10:00:00",
    }
    return pd.DataFrame([base | row for row in rows])


def test_good_events_are_normalized():
    checked = check_events(events({"token": " t1 ", "status": "failed", "reason": "Forbidden"}))
    assert checked.bad.empty
    row = checked.good.iloc[0]
    assert (row["token"], row["status"], row["reason"]) == ("t1", "FAILED", "Forbidden")
    assert row["occurred_at"] == pd.Timestamp("2026-02-01 10:00:00")


def test_bad_events_are_set_aside_with_a_reason_not_raised():
    checked = check_events(
        events(
            {"status": "BOUNCED"},
            {"token": None},
            {"token": "  "},
            {"message_id": None},
            {"occurred_at": "yesterday-ish"},
            {"occurred_at": None},
            {"status": None},
        )
    )
    assert checked.good.empty
    assert list(checked.bad["rejection"]) == [
        "unknown_status: BOUNCED",
        "malformed: token missing",
        "malformed: token missing",
        "malformed: message_id missing",
        "malformed: occurred_at missing or not a timestamp",
        "malformed: occurred_at missing or not a timestamp",
        "unknown_status: ",
    ]


def test_event_key_is_stable_and_distinguishes_statuses():
    first = check_events(events({}, {"status": "CLICKED"}))
    again = check_events(events({}, {"status": "clicked"}))
    assert list(first.good["event_key"]) == list(again.good["event_key"])
    assert first.good["event_key"].is_unique


def test_daily_figures_and_rates():
    counts = pd.DataFrame(
        [
            {"day": "2026-02-01", "status": "SENT", "reason": None, "events": 200},
            {"day": "2026-02-01", "status": "FAILED", "reason": "Forbidden", "events": 10},
            {"day": "2026-02-01", "status": "FAILED", "reason": "Timeout", "events": 4},
            {"day": "2026-02-01", "status": "CLICKED", "reason": None, "events": 30},
            {"day": "2026-02-02", "status": "FAILED", "reason": "forbidden", "events": 2},
        ]
    )
    daily = daily_delivery(counts).set_index("day")
    assert daily.loc["2026-02-01"].to_dict() == {
        "sent": 200,
        "failed": 14,
        "failed_forbidden": 10,
        "clicked": 30,
        "click_rate": 0.15,
        "blocked_rate": 0.05,
    }
    assert pd.isna(daily.loc["2026-02-02", "blocked_rate"])  # nothing sent: no rate


def test_blocked_rate_jump_warns_only_above_floor_and_multiple():
    quiet = pd.DataFrame(
        {"day": [f"2026-02-0{d}" for d in range(1, 9)], "blocked_rate": [0.01] * 8}
    )
    assert blocked_rate_jump(quiet, multiple=3, floor=0.02)[0]
    spike = quiet.assign(blocked_rate=[0.01] * 7 + [0.2])
    passed, description, metadata = blocked_rate_jump(spike, multiple=3, floor=0.02)
    assert not passed and "jumped" in description and metadata["blocked_rate"] == 0.2
    small = quiet.assign(blocked_rate=[0.001] * 7 + [0.015])  # 15x, but under the floor
    assert blocked_rate_jump(small, multiple=3, floor=0.02)[0]
