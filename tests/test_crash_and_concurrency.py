"""A killed run resumes without loss; two runs at once push no token twice.

Both use the real CLI in separate processes (separate Dagster instances, too, for the
concurrent case) against one PostgreSQL warehouse and a slow sandbox.
"""

import os
import signal
import subprocess
import time
from collections import Counter

from sqlalchemy import text

from dagster_project.demo import materialize_command
from tests.helpers import add_phone_subscribers, token_counts, warehouse_engine
from tests.test_cli import sync_env

TOKENS = [str(5000 + n) for n in range(40)]


def seed(url: str):
    engine = warehouse_engine(url)
    add_phone_subscribers(engine, TOKENS)
    return engine


def ledger_size(engine) -> int:
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('esputnik_token_ledger')")).scalar()
        if exists is None:
            return 0
        return conn.execute(text("SELECT COUNT(*) FROM esputnik_token_ledger")).scalar_one()


def test_killed_run_resumes_and_resends_at_most_the_chunk_in_flight(
    postgres_url, sandbox, tmp_path
):
    engine = seed(postgres_url)
    sandbox.set_faults(latency_seconds=0.4)
    env = sync_env(tmp_path, postgres_url, sandbox.base_url) | {"ESPUTNIK_CHUNK_SIZE": "2"}
    process = subprocess.Popen(
        materialize_command(),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while ledger_size(engine) < 6:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the push never started"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    recorded = ledger_size(engine)
    assert 6 <= recorded < len(TOKENS)

    sandbox.set_faults()
    rerun = subprocess.run(materialize_command(), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    counts = token_counts(sandbox)
    assert set(counts) == set(TOKENS)  # nothing lost
    duplicated = [t for t, n in counts.items() if n > 1]
    assert len(duplicated) <= 2  # at most the one chunk (of 2) in flight at the kill
    assert ledger_size(engine) == len(TOKENS)


def test_two_concurrent_runs_push_each_token_once(postgres_url, sandbox, tmp_path):
    seed(postgres_url)
    sandbox.set_faults(latency_seconds=0.1)
    runs = []
    for name in ("nightly", "backfill"):
        env = sync_env(tmp_path, postgres_url, sandbox.base_url, name) | {
            "ESPUTNIK_CHUNK_SIZE": "4"
        }
        runs.append(
            subprocess.Popen(
                materialize_command(),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert token_counts(sandbox) == Counter(dict.fromkeys(TOKENS, 1))
    assert any("waiting for its lock" in out or "pushing 0 tokens" in out for out in outputs)
