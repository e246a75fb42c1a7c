"""Delivery under faults: every valid token ends up in eSputnik exactly once.

Each test is a real Dagster run against the sandbox with a fault switched on, asserting on what
the sandbox stored and on the ledger.
"""

import time
from collections import Counter

import pytest
from sqlalchemy import text

from dagster_project.core.ledger import pending_chunks
from tests.helpers import (
    add_phone_subscribers,
    last_metadata,
    run_sync,
    sync_resources,
    token_counts,
    warehouse_engine,
)

TOKENS = [str(7000 + n) for n in range(24)]
EXPECTED = Counter(dict.fromkeys(TOKENS, 1))


@pytest.fixture
def warehouse(sqlite_url):
    engine = warehouse_engine(sqlite_url)
    add_phone_subscribers(engine, TOKENS)
    return engine


def ledger_tokens(engine) -> Counter:
    with engine.connect() as conn:
        return Counter(r[0] for r in conn.execute(text("SELECT token FROM esputnik_token_ledger")))


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param({"fail_first": 3, "fail_status": 429, "retry_after": 1}, id="429-retry-after"),
        pytest.param({"fail_first": 3, "fail_status": 429}, id="429-no-retry-after"),
        pytest.param({"error_rate": 0.4, "error_statuses": [503], "seed": 3}, id="503-mix"),
        # A 502 may have stored the chunk: it is sent once more (the sandbox stored nothing).
        pytest.param({"fail_first": 1, "fail_status": 502}, id="502-then-resend"),
        pytest.param({"drop_rate": 0.3, "seed": 5}, id="dropped-connections"),
        pytest.param({"latency_seconds": 0.3}, id="slow-responses"),
        pytest.param({"max_body_bytes": 180}, id="max-body-size"),
    ],
)
def test_transient_faults_lose_and_duplicate_nothing(warehouse, sqlite_url, sandbox, faults):
    sandbox.set_faults(**faults)
    result = run_sync(sync_resources(sqlite_url, sandbox, chunk_size=4, max_retries=8))
    assert result.success
    assert token_counts(sandbox) == EXPECTED
    assert ledger_tokens(warehouse) == EXPECTED


def test_chunk_with_refused_tokens_is_bisected_and_offenders_quarantined(
    warehouse, sqlite_url, sandbox
):
    bad = {TOKENS[5], TOKENS[17]}
    sandbox.set_faults(reject_tokens=sorted(bad))
    resources = sync_resources(sqlite_url, sandbox, chunk_size=8)
    result = run_sync(resources)
    assert result.success
    assert token_counts(sandbox) == Counter({t: 1 for t in TOKENS if t not in bad})
    pushed = last_metadata(result, "esputnik_pushed_tokens")
    assert pushed["tokens_quarantined"] == 2
    reasons = [r.data["reason"] for r in pushed["quarantined_sample"].records]
    assert reasons and all("token format is invalid" in reason for reason in reasons)
    assert TOKENS[5] not in pushed["quarantined_sample"]  # masked
    with warehouse.connect() as conn:
        quarantined = dict(
            conn.execute(text("SELECT token, reason FROM esputnik_token_quarantine")).all()
        )
    assert set(quarantined) == bad and all("invalid" in r for r in quarantined.values())
    # A re-executed push of that batch has nothing left to send: the quarantined tokens left
    # its send list with their quarantine rows, and the rest are in the ledger.
    with warehouse.connect() as conn:
        batch_id = conn.execute(text("SELECT batch_id FROM esputnik_sync_runs")).scalar_one()
    app_uuid = resources["esputnik"].app_uuid
    assert list(pending_chunks(warehouse, batch_id, app_uuid, chunk_size=8)) == []

    # Not retried every night while unchanged...
    requests_before = sandbox.state.snapshot()["requests_seen"]
    rerun = run_sync(resources)
    assert last_metadata(rerun, "new_esputnik_tokens")["tokens_quarantine_skipped"] == 2
    assert sandbox.state.snapshot()["requests_seen"] == requests_before
    # ...but retried once its data changes.
    sandbox.set_faults()
    with warehouse.begin() as conn:
        conn.execute(
            text("UPDATE telegram_subscribers SET phone = '+380671112233' WHERE chat_id = :t"),
            {"t": TOKENS[5]},
        )
    assert run_sync(resources).success
    assert token_counts(sandbox)[TOKENS[5]] == 1
    assert token_counts(sandbox)[TOKENS[17]] == 0


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"api_key": "wrong-key-d41"}, "ESPUTNIK_API_KEY"),
        ({"app_uuid": "11111111-2222-4333-8444-555555555555"}, "ESPUTNIK_APP_UUID"),
    ],
)
def test_account_errors_fail_fast_without_retry_storm(
    warehouse, sqlite_url, sandbox, overrides, setting
):
    resources = sync_resources(sqlite_url, sandbox, chunk_size=4, max_retries=8, **overrides)
    started = time.monotonic()
    result = run_sync(resources)
    assert not result.success
    assert time.monotonic() - started < 20
    # refused by the credential check before the extract: one empty request, no token sent
    assert sandbox.state.snapshot()["probes_seen"] == 1
    assert sandbox.state.snapshot()["requests_seen"] == 0
    assert not result.asset_materializations_for_node("subscriber_extract")
    assert ledger_tokens(warehouse) == Counter()
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.event_specific_data.error.to_string()
    assert setting in message
    assert "wrong-key-d41" not in message


def test_spent_retry_budget_fails_the_run_and_the_next_run_resumes(warehouse, sqlite_url, sandbox):
    sandbox.set_faults(fail_after=2, fail_status=503)
    resources = sync_resources(sqlite_url, sandbox, chunk_size=4, max_retries=2)
    failed = run_sync(resources)
    assert not failed.success
    accepted = token_counts(sandbox)
    assert sum(accepted.values()) == 8  # two chunks got through before the outage
    assert ledger_tokens(warehouse) == accepted

    sandbox.set_faults()
    assert run_sync(resources).success
    assert token_counts(sandbox) == EXPECTED


def test_lost_response_duplicates_at_most_the_chunk_in_flight(warehouse, sqlite_url, sandbox):
    """The documented trade-off: a response lost after eSputnik stored the chunk is sent once
    more, so its tokens are stored twice, never more."""
    sandbox.set_faults(latency_seconds=1.0, latency_first=1)
    resources = sync_resources(sqlite_url, sandbox, chunk_size=4, read_timeout_seconds=0.3)
    assert run_sync(resources).success
    counts = token_counts(sandbox)
    assert set(counts) == set(TOKENS)
    duplicated = [t for t, n in counts.items() if n > 1]
    assert len(duplicated) <= 4 and all(counts[t] == 2 for t in duplicated)


def test_in_flight_and_rate_limits_are_kept(warehouse, sqlite_url, sandbox):
    sandbox.set_faults(latency_seconds=0.2)
    resources = sync_resources(
        sqlite_url, sandbox, chunk_size=2, max_in_flight=3, requests_per_second=8
    )
    result = run_sync(resources)
    assert result.success
    state = sandbox.state
    assert token_counts(sandbox) == EXPECTED
    assert 2 <= state.max_in_flight <= 3
    starts = state.request_times
    assert len(starts) == 12
    for first, later in zip(starts, starts[8:], strict=False):
        assert later - first >= 0.95  # never more than 8 request starts within a second
    # The run reports how much of the limit it used: 12 requests in what 8/s allows.
    pushed = last_metadata(result, "esputnik_pushed_tokens")
    assert pushed["requests_sent"] == 12
    assert pushed["sending_seconds"] >= 11 / 8
    busy = 11 / pushed["sending_seconds"] / 8  # 11 intervals of 1/8 s between 12 starts
    assert pushed["rate_limit_busy"] == pytest.approx(busy, abs=1e-3)


def test_dry_run_sends_nothing_and_changes_no_ledger(warehouse, sqlite_url, sandbox):
    resources = sync_resources(sqlite_url, sandbox, settings={"dry_run": True})
    result = run_sync(resources)
    assert result.success
    assert sandbox.state.snapshot()["requests_seen"] == 0
    assert ledger_tokens(warehouse) == Counter()
    pushed = last_metadata(result, "esputnik_pushed_tokens")
    assert (pushed["dry_run"], pushed["tokens_pending"], pushed["tokens_pushed"]) == (True, 24, 0)
    sample = [r.data for r in pushed["would_send_sample"].records]
    assert sample and all("***" in row["token"] for row in sample)
    assert "+380500000000" not in str(sample)
