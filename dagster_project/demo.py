"""``make demo``: seed a SQLite warehouse, start the sandbox, run the nightly job, report.

Runs the real CLI (``dagster job execute``) against the bundled eSputnik sandbox, so what it
prints is what a nightly run does. Each invocation starts from a fresh warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, Row, create_engine, text

from dagster_project.assets import GROUP
from dagster_project.jobs import esputnik_sync_job
from dagster_project.warehouse_seed import create_message_events_table, seed_warehouse

DEMO_API_KEY = "demo-api-key"
DEMO_APP_UUID = "5b0a3a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"


def _dagster(*arguments: str) -> list[str]:
    dagster = str(Path(sys.executable).with_name("dagster"))
    return [dagster, *arguments, "-m", "dagster_project.definitions"]


def materialize_command(run_config: dict | None = None) -> list[str]:
    """The documented CLI call that syncs every subscriber (or the run config's range)."""
    command = [*_dagster("asset", "materialize"), "--select", f"group:{GROUP}"]
    return command + (["--config-json", json.dumps(run_config)] if run_config else [])


def nightly_command() -> list[str]:
    """The documented CLI call that runs what the nightly schedule runs."""
    return [*_dagster("job", "execute"), "-j", esputnik_sync_job.name]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the sandbox did not answer at {url} within {seconds:.0f}s"
                ) from None
            time.sleep(0.2)


def _query(engine: Engine, sql: str) -> list[Row]:
    """Every row of a query the demo reads its figures with."""
    with engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


def _post_json(url: str, payload: object) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).read()


def run_demo(workdir: Path, subscribers: int) -> int:
    workdir.mkdir(exist_ok=True)
    warehouse_file = workdir / "warehouse.sqlite"
    warehouse_file.unlink(missing_ok=True)
    dagster_home = workdir / "dagster_home"
    shutil.rmtree(dagster_home, ignore_errors=True)
    dagster_home.mkdir()
    url = f"sqlite:///{warehouse_file.resolve()}"
    engine = create_engine(url)
    contacts, rows = seed_warehouse(engine, subscribers)
    create_message_events_table(engine)
    print(f"seeded {warehouse_file}: {contacts} CRM contacts, {rows} subscriber rows")

    port = _free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "dagster_project.sandbox", "--port", str(port)],
        env={**os.environ, "ESPUTNIK_API_KEY": DEMO_API_KEY, "ESPUTNIK_APP_UUID": DEMO_APP_UUID},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/_sandbox/state")
        known = _query(
            engine,
            "SELECT esputnik_contact_id, email FROM crm_contacts"
            " WHERE esputnik_contact_id IS NOT NULL",
        )
        _post_json(f"{base}/_sandbox/contacts", [{"id": cid, "email": e} for cid, e in known])
        env = {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home.resolve()),
            "WAREHOUSE_URL": url,
            "ESPUTNIK_API_KEY": DEMO_API_KEY,
            "ESPUTNIK_APP_UUID": DEMO_APP_UUID,
            "ESPUTNIK_BASE_URL": f"{base}/api",
        }
        command = nightly_command()
        print("running:", " ".join(command[1:]))
        log_path = workdir / "last_run.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                if " - INFO - " in line or "ERROR" in line:
                    print("  " + line.rstrip().split(" - ")[-1])
            code = process.wait()
        with urllib.request.urlopen(f"{base}/_sandbox/state", timeout=10) as response:
            held = json.load(response)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print_summary(engine, held)
    print(f"\nfull log: {log_path}; browse the runs with: DAGSTER_HOME={dagster_home} dagster dev")
    return code


def print_summary(engine: Engine, held: dict) -> None:
    tokens = held["tokens"]
    resolved = Counter(t["resolved_by"] for t in tokens)
    created = sum(t["contact_created"] for t in tokens)
    reasons = _query(
        engine,
        "SELECT outcome, reason, COUNT(*) FROM esputnik_sync_rejects"
        " GROUP BY outcome, reason ORDER BY outcome, reason",
    )
    [(ledger,)] = _query(engine, "SELECT COUNT(*) FROM esputnik_token_ledger")
    print("\n=== summary ===")
    print(
        f"tokens held by the sandbox : {len(tokens)} ({len({t['token'] for t in tokens})} distinct)"
    )
    print(f"tokens in the ledger       : {ledger}")
    print("contact resolved by        : " + ", ".join(f"{k}={v}" for k, v in resolved.items()))
    print(f"contacts created           : {created}")
    print("not sent / identifiers dropped:")
    for outcome, reason, count in reasons:
        print(f"  {outcome:<19} {reason:<28} {count}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(".demo"))
    parser.add_argument("--subscribers", type=int, default=2_000)
    args = parser.parse_args(argv)
    sys.exit(run_demo(args.workdir, args.subscribers))


if __name__ == "__main__":
    main()
