"""The push's guarantees at the core level: push_pending with a real state database (SQLite
and PostgreSQL) and the sandbox over HTTP. No token is stored more than twice, over all runs;
a failed ledger write loses and repeats nothing; a lost lock, a systemic refusal and tokens in
doubt stop the push."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import Engine, create_engine, text

from dagster_project.core.esputnik import EsputnikClient
from dagster_project.core.held import count_in_doubt
from dagster_project.core.push import push_pending
from dagster_project.core.push_types import (
    LedgerWriteError,
    PushLockLostError,
    PushOptions,
    SystemicRefusalError,
    TokensInDoubtError,
)
from dagster_project.core.schema import ensure_state_schema
from tests.helpers import API_KEY, APP_UUID, token_counts

BATCH = "batch-1"


def state_engine(url: str, **connect_args: object) -> Engine:
    engine = create_engine(url, connect_args=connect_args)
    ensure_state_schema(engine)
    return engine


def stage(engine: Engine, tokens: list[str], batch: str = BATCH) -> None:
    """Tokens to send, as the diff leaves them: valid rows, and their tokens chosen."""
    rows = [
        {"batch": batch, "row": n, "token": t, "phone": f"38050{n:07d}"}
        for n, t in enumerate(tokens)
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO esputnik_stage_valid (batch_id, source_row, token, phone, fingerprint)"
                " VALUES (:batch, :row, :token, :phone, 'f')"
            ),
            rows,
        )
        conn.execute(
            text("INSERT INTO esputnik_stage_new (batch_id, token) VALUES (:batch, :token)"), rows
        )


def client(sandbox, **overrides: object) -> EsputnikClient:
    settings = {
        "base_url": sandbox.base_url,
        "app_uuid": APP_UUID,
        "api_key": API_KEY,
        "max_retries": 2,
        "backoff_factor": 0.01,
    }
    return EsputnikClient(**(settings | overrides))


def push(engine: Engine, sandbox, run: str = "run-1", **options: object):
    settings = {"chunk_size": 4, "ledger_backoff_seconds": 0.02} | options
    return push_pending(
        engine, client(sandbox), BATCH, run, PushOptions(**settings), log=lambda _: None
    )


def ledger(engine: Engine) -> Counter:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT token FROM esputnik_token_ledger"))
        return Counter(row[0] for row in rows)


TOKENS = [f"t{n:03d}" for n in range(12)]  # token order is push order: chunks of 4


@pytest.fixture
def state(warehouse_url) -> Engine:
    engine = state_engine(warehouse_url)
    stage(engine, TOKENS)
    yield engine
    engine.dispose()


def test_an_ambiguous_answer_resends_the_chunk_once(state, sandbox):
    sandbox.set_faults(sequence=["store-502"])
    report = push(state, sandbox)
    counts = token_counts(sandbox)
    assert counts == Counter({t: 2 if t in TOKENS[:4] else 1 for t in TOKENS})
    assert ledger(state) == Counter(dict.fromkeys(TOKENS, 1))
    assert (report.tokens_resent, report.tokens_in_doubt, count_in_doubt(state, APP_UUID)) == (
        4,
        0,
        0,
    )


@pytest.mark.parametrize("second", ["store-drop", "store-504"])
def test_a_lost_resend_puts_the_chunk_in_doubt_until_released(state, sandbox, second, tmp_path):
    sandbox.set_faults(sequence=["store-502", second])
    with pytest.raises(TokensInDoubtError, match="4 tokens may be stored twice") as stopped:
        push(state, sandbox)
    assert stopped.value.report.tokens_in_doubt == 4
    assert count_in_doubt(state, APP_UUID) == 4
    assert sum(token_counts(sandbox).values()) == 8  # chunk 1, twice; nothing after it

    sandbox.set_faults()
    push(state, sandbox, "run-2")  # the next run sends the rest, never the tokens in doubt
    assert token_counts(sandbox) == Counter({t: 2 if t in TOKENS[:4] else 1 for t in TOKENS})
    assert set(ledger(state)) == set(TOKENS[4:])

    release = [sys.executable, "-m", "dagster_project.release", "in-doubt", "--app", APP_UUID]
    state_url = state.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [*release, "--state-url", state_url, "--as-pushed", "--tokens", TOKENS[0], TOKENS[1]],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "2 tokens" in done.stdout
    assert count_in_doubt(state, APP_UUID) == 2
    assert set(ledger(state)) == set(TOKENS[4:]) | {TOKENS[0], TOKENS[1]}
    done = subprocess.run([*release, "--state-url", state_url], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    push(state, sandbox, "run-3")  # released without --as-pushed: sent again, by decision
    assert token_counts(sandbox)[TOKENS[2]] == 3 and token_counts(sandbox)[TOKENS[0]] == 2
    assert count_in_doubt(state, APP_UUID) == 0


def test_no_token_is_sent_more_than_twice_over_runs(state, sandbox):
    """A lost answer, then a resend refused with 503 (stored nothing): the token owes one lost
    request, and the next run's lost answer puts it in doubt without a third request."""
    sandbox.set_faults(sequence=["store-502", "503", "503", "503"])
    with pytest.raises(Exception, match="503"):
        push(state, sandbox)
    sandbox.set_faults(sequence=["store-drop"])
    with pytest.raises(TokensInDoubtError):
        push(state, sandbox, "run-2")
    sandbox.set_faults()
    push(state, sandbox, "run-3")
    counts = token_counts(sandbox)
    assert max(counts.values()) == 2 and count_in_doubt(state, APP_UUID) == 4
    assert set(counts) == set(TOKENS)


@pytest.fixture
def ledger_lock(warehouse_url):
    """Hold a write lock on the ledger from another connection, as a concurrent writer or a
    database in trouble would; the push's engine gives up on a lock within 0.1 s."""
    sqlite = warehouse_url.startswith("sqlite")
    if sqlite:
        engine = state_engine(warehouse_url, timeout=0.1)
        statements = ["BEGIN IMMEDIATE"]
    else:
        engine = state_engine(warehouse_url, options="-c lock_timeout=100")
        statements = ["BEGIN", "LOCK TABLE esputnik_token_ledger IN EXCLUSIVE MODE"]
    stage(engine, TOKENS)
    holder = create_engine(warehouse_url, isolation_level="AUTOCOMMIT")
    connection = holder.connect()

    def hold() -> None:
        for statement in statements:
            connection.exec_driver_sql(statement)

    def release() -> None:
        connection.exec_driver_sql("ROLLBACK")

    yield engine, hold, release
    connection.close()
    holder.dispose()
    engine.dispose()


def test_a_ledger_write_that_fails_briefly_is_retried(ledger_lock, sandbox, tmp_path):
    engine, hold, release = ledger_lock
    hold()
    threading.Timer(0.4, release).start()
    push(engine, sandbox, ledger_attempts=8, journal_dir=tmp_path / "journal")
    assert token_counts(sandbox) == Counter(dict.fromkeys(TOKENS, 1))
    assert ledger(engine) == Counter(dict.fromkeys(TOKENS, 1))
    assert not list((tmp_path / "journal").glob("*"))


def test_a_ledger_write_that_keeps_failing_journals_the_chunk_and_stops(
    ledger_lock, sandbox, tmp_path
):
    engine, hold, release = ledger_lock
    # The lock is taken while eSputnik holds the first request: the count taken before the
    # request is written, the ledger write after the 2xx is not.
    sandbox.set_faults(latency_seconds=0.5, latency_first=1)

    def hold_once_sent() -> None:
        while sandbox.state.snapshot()["requests_seen"] < 1:
            time.sleep(0.01)
        hold()

    holder = threading.Thread(target=hold_once_sent)
    holder.start()
    with pytest.raises(LedgerWriteError) as stopped:
        push(engine, sandbox, ledger_attempts=2, journal_dir=tmp_path / "journal")
    holder.join()
    message = str(stopped.value)
    assert "accepted chunk 1 (4 tokens)" in message and "journal" in message
    assert sandbox.state.snapshot()["requests_seen"] == 1  # stopped at once
    assert len(list((tmp_path / "journal").glob("*"))) == 1
    release()

    report = push(engine, sandbox, "run-2", journal_dir=tmp_path / "journal")
    assert report.tokens_from_journal == 4
    assert token_counts(sandbox) == Counter(dict.fromkeys(TOKENS, 1))
    assert ledger(engine) == Counter(dict.fromkeys(TOKENS, 1))
    assert not list((tmp_path / "journal").glob("*"))


def test_a_lost_push_lock_stops_the_push(postgres_url, sandbox):
    engine = state_engine(postgres_url)
    stage(engine, TOKENS)
    sandbox.set_faults(latency_seconds=0.3)

    def kill_the_lock_connection() -> None:
        while sandbox.state.snapshot()["requests_seen"] < 1:
            time.sleep(0.02)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                )
            )

    killer = threading.Thread(target=kill_the_lock_connection)
    killer.start()
    with pytest.raises(PushLockLostError, match=r"push lock .* was lost"):
        push(engine, sandbox)
    killer.join()
    sent = token_counts(sandbox)
    assert 0 < sum(sent.values()) < len(TOKENS)
    assert ledger(engine) == sent  # what was accepted is recorded
    engine.dispose()


def test_a_systemic_refusal_stops_the_push(warehouse_url, sandbox):
    tokens = [f"r{n:03d}" for n in range(200)]
    engine = state_engine(warehouse_url)
    stage(engine, tokens)
    sandbox.set_faults(reject_tokens=tokens)
    with pytest.raises(SystemicRefusalError, match="refused 20 of the 20 tokens"):
        push(engine, sandbox, chunk_size=50, refused_min_tokens=20)
    requests = sandbox.state.snapshot()["requests_seen"]
    assert requests < 2 * 50 - 1  # less than bisecting one chunk down to single tokens
    engine.dispose()


def test_one_refused_token_in_a_small_run_does_not_stop_it(state, sandbox):
    sandbox.set_faults(reject_tokens=[TOKENS[5]])
    report = push(state, sandbox)
    assert report.tokens_quarantined == 1 and report.tokens_pushed == len(TOKENS) - 1


def test_the_push_holds_no_transaction_open_while_it_sends(postgres_url, sandbox):
    """Pending tokens are read in keyed pages: between pages, no transaction stays open
    (a server-side cursor over the whole push held one for as long as the push ran)."""
    engine = state_engine(postgres_url)
    stage(engine, TOKENS)
    sandbox.set_faults(latency_seconds=0.2)
    watcher = create_engine(postgres_url)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with watcher.connect() as conn:
            while not done.is_set():
                seen.append(
                    conn.execute(
                        text(
                            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname ="
                            " current_database() AND state = 'idle in transaction'"
                            " AND pid <> pg_backend_pid()"
                            # a short write between two requests is fine; a transaction
                            # held across requests (each 0.2 s here) is not
                            " AND now() - xact_start > interval '0.5 seconds'"
                        )
                    ).scalar_one()
                )
                conn.rollback()
                time.sleep(0.05)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        push(engine, sandbox)
    finally:
        done.set()
        thread.join()
    assert len(seen) > 5 and max(seen) == 0
    assert token_counts(sandbox) == Counter(dict.fromkeys(TOKENS, 1))
    watcher.dispose()
    engine.dispose()


KILLED_PUSH = """
import sys
from sqlalchemy import create_engine
from dagster_project.core.esputnik import EsputnikClient
from dagster_project.core.push import push_pending
from dagster_project.core.push_types import PushOptions
url, base_url, api_key, app_uuid = sys.argv[1:]
client = EsputnikClient(base_url=base_url, app_uuid=app_uuid, api_key=api_key, read_timeout=30)
push_pending(create_engine(url), client, "batch-1", "run-killed", PushOptions(chunk_size=4))
"""


def test_a_run_killed_during_its_first_request_cannot_lead_to_a_third_copy(sqlite_url, sandbox):
    """The request is counted before it goes out: killed while eSputnik stores the chunk, the
    run leaves its tokens at one send; a later lost answer then puts them in doubt."""
    engine = state_engine(sqlite_url)
    stage(engine, TOKENS[:4])
    sandbox.set_faults(latency_seconds=1.0)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUSH, sqlite_url, sandbox.base_url, API_KEY, APP_UUID]
    )
    deadline = time.monotonic() + 30
    while sandbox.state.snapshot()["requests_seen"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    child.kill()  # as a kill -9 of the run's process, with the request open
    child.wait()
    time.sleep(1.5)  # eSputnik finishes storing the chunk nobody waits for
    assert token_counts(sandbox) == Counter(dict.fromkeys(TOKENS[:4], 1))
    assert ledger(engine) == Counter()

    sandbox.set_faults(sequence=["store-drop"])  # the next run's answer is lost too
    with pytest.raises(TokensInDoubtError):
        push(engine, sandbox, "run-2")
    assert token_counts(sandbox) == Counter(dict.fromkeys(TOKENS[:4], 2))
    assert count_in_doubt(engine, APP_UUID) == 4
    sandbox.set_faults()
    push(engine, sandbox, "run-3")  # in doubt: never sent again until released
    assert max(token_counts(sandbox).values()) == 2
