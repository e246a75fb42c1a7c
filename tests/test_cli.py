"""The documented commands, run through the real CLI on PostgreSQL."""

import os
import subprocess
from collections import Counter
from pathlib import Path

from dagster_project.demo import materialize_command
from tests.helpers import (
    API_KEY,
    APP_UUID,
    add_contacts,
    add_subscribers,
    scope_config,
    token_counts,
    warehouse_engine,
)


def sync_env(tmp_path: Path, warehouse_url: str, base_url: str, name: str = "home") -> dict:
    """Environment of a CLI run with its own Dagster instance."""
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    return os.environ | {
        "DAGSTER_HOME": str(home),
        "WAREHOUSE_URL": warehouse_url,
        "ESPUTNIK_API_KEY": API_KEY,
        "ESPUTNIK_APP_UUID": APP_UUID,
        "ESPUTNIK_BASE_URL": base_url,
    }


def materialize(env: dict[str, str], run_config: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        materialize_command(run_config), env=env, capture_output=True, text=True, timeout=300
    )


def files_containing(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_sync_command_twice_sends_every_valid_token_once(postgres_url, sandbox, tmp_path):
    engine = warehouse_engine(postgres_url)
    add_contacts(engine, {"customer_id": "C-1", "esputnik_contact_id": 7, "email": "a@example.com"})
    add_subscribers(
        engine,
        {"chat_id": "1", "customer_id": "C-1", "subscribed_at": "2026-01-01 00:00:00"},
        {"chat_id": "2", "phone": "0501234567", "subscribed_at": "2026-06-15 12:00:00"},
        {"chat_id": "3", "subscribed_at": "2026-11-23 23:59:59"},  # no identifier yet
        {"chat_id": "4", "phone": "0501234568", "subscribed_at": "2016-11-24 00:00:00"},
        {"chat_id": "6", "phone": "0501234570", "subscribed_at": "2026-02-02 02:02:02"},
        {"chat_id": "7", "phone": "0501234571", "subscribed_at": "2026-09-09 09:09:09"},
    )
    env = sync_env(tmp_path, postgres_url, sandbox.base_url)
    ranged = materialize(
        env, scope_config(subscribed_from="2026-01-01", subscribed_to="2026-06-30")
    )
    assert ranged.returncode == 0, ranged.stderr[-3000:]
    assert token_counts(sandbox) == Counter({"1": 1, "2": 1, "6": 1})

    first = materialize(env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert token_counts(sandbox) == Counter({"1": 1, "2": 1, "4": 1, "6": 1, "7": 1})
    assert API_KEY not in first.stdout + first.stderr

    add_contacts(engine, {"customer_id": "C-3", "phone": "+380671112233"})
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE telegram_subscribers SET customer_id = 'C-3' WHERE chat_id = '3'"
        )
    add_subscribers(
        engine, {"chat_id": "5", "phone": "0501234569", "subscribed_at": "2026-03-03 03:03:03"}
    )
    second = materialize(env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert token_counts(sandbox) == Counter(dict.fromkeys("1234567", 1))
    assert {t["token"]: t["sent"] for t in sandbox.state.snapshot()["tokens"]}["3"] == {
        "externalCustomerId": "C-3",
        "phone": "380671112233",
    }

    # The key never reaches Dagster's storage (runs, event log, compute logs) or the output.
    assert API_KEY not in second.stdout + second.stderr
    assert files_containing(tmp_path / "home", API_KEY) == []
