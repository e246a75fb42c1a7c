"""The code location on a real Dagster instance: PostgreSQL storage, and the webserver."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from dagster_project.demo import materialize_command
from tests.helpers import add_subscribers, token_counts, warehouse_engine
from tests.test_cli import sync_env

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_sync_on_a_postgres_instance(postgres_url, sandbox, tmp_path):
    """Runs, event log and schedule storage in PostgreSQL, per deploy/dagster.postgres.yaml."""
    warehouse = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    add_subscribers(
        warehouse_engine(warehouse),
        {"chat_id": "1", "phone": "0501234567", "subscribed_at": "2026-01-10 10:00:00"},
    )
    # dagster-postgres needs the psycopg2 driver (SQLAlchemy 2.1 defaults to psycopg 3).
    instance_url = postgres_url.replace("postgresql+psycopg://", "postgresql+psycopg2://")
    env = sync_env(tmp_path, warehouse, sandbox.base_url) | {"DAGSTER_POSTGRES_URL": instance_url}
    shutil.copy(DEPLOY / "dagster.postgres.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    result = subprocess.run(materialize_command(), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert token_counts(sandbox) == {"1": 1}
    with create_engine(postgres_url).connect() as conn:
        runs = conn.execute(text("SELECT status FROM runs")).scalars().all()
        events = dict(
            conn.execute(
                text(
                    "SELECT dagster_event_type, COUNT(*) FROM event_logs WHERE dagster_event_type"
                    " IN ('ASSET_MATERIALIZATION', 'ASSET_MATERIALIZATION_PLANNED')"
                    " GROUP BY dagster_event_type"
                )
            ).all()
        )
    assert runs == ["SUCCESS"]
    # one planned event and one materialization per asset, whatever the data covers
    assert events == {"ASSET_MATERIALIZATION": 4, "ASSET_MATERIALIZATION_PLANNED": 4}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        assetNodes { assetKey { path } groupName description }
        schedules { name }
        sensors { name }
        jobs { name }
      }
    }
  }
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name blocking } } } }
}
"""


def test_webserver_serves_the_code_location(tmp_path):
    port = _free_port()
    (tmp_path / "home").mkdir()
    env = os.environ | {"DAGSTER_HOME": str(tmp_path / "home")}
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen(
        [str(webserver), "-m", "dagster_project.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, "the webserver exited"
            assert time.monotonic() < deadline, "the webserver did not start in 120s"
            time.sleep(0.5)
        data = requests.post(f"{base}/graphql", json={"query": QUERY}, timeout=60).json()["data"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    repository = data["repositoriesOrError"]["nodes"][0]
    assets = {tuple(a["assetKey"]["path"]): a for a in repository["assetNodes"]}
    groups = {path[0]: a["groupName"] for path, a in assets.items()}
    assert groups == {
        "subscriber_extract": "esputnik_token_sync",
        "validated_subscribers": "esputnik_token_sync",
        "new_esputnik_tokens": "esputnik_token_sync",
        "esputnik_pushed_tokens": "esputnik_token_sync",
        "esputnik_message_events_ingested": "esputnik_delivery",
        "esputnik_delivery_metrics": "esputnik_delivery",
        "crm_contacts": "warehouse",
        "telegram_subscribers": "warehouse",
        "esputnik_message_events": "warehouse",
    }
    assert all(a["description"] for a in assets.values())
    assert {s["name"] for s in repository["schedules"]} == {"esputnik_sync_nightly"}
    assert {s["name"] for s in repository["sensors"]} == {
        "esputnik_sync_failure_alert",
        "esputnik_sync_freshness_alert",
    }
    checks = {
        check["name"]: check["blocking"]
        for node in data["assetNodes"]
        for check in node["assetChecksOrError"]["checks"]
    }
    assert checks == {
        "payload_contract": True,
        "identifier_completeness": True,
        "mass_change_guard": True,
        "ledger_no_duplicates": False,
        "push_quarantine": False,
        "blocked_rate_jump": False,
        "message_status_ingest": False,
        "tokens_in_doubt": False,
        "subscriber_timestamps": False,
        "raw_extract_expectations": False,
    }
