"""``make demo``: seed a SQLite warehouse, start the sandbox, run the sync over a range, report.

Runs the real CLI (``dagster asset materialize``) against the bundled eSputnik sandbox, so what
it prints is what a nightly run would do. Each invocation starts from a fresh warehouse.
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

from sqlalchemy import create_engine, text

from dagster_project.assets import GROUP
from dagster_project.warehouse_seed import seed_warehouse

DEMO_API_KEY = "demo-api-key"
DEMO_APP_UUID = "5b0a3a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"


def materialize_command(partition_range: str) -> list[str]:
    """The documented CLI call that syncs a range of days as one run."""
    return [
        str(Path(sys.executable).with_name("dagster")),
        "asset",
        "materialize",
        "-m",
        "dagster_project.definitions",
        "--select",
        f"group:{GROUP}",
        "--partition-range",
        partition_range,
    ]


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


def _post_json(url: str, payload: object) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).read()


def run_demo(workdir: Path, subscribers: int, partition_range: str) -> int:
    workdir.mkdir(exist_ok=True)
    warehouse_file = workdir / "warehouse.sqlite"
    warehouse_file.unlink(missing_ok=True)
    dagster_home = workdir / "dagster_home"
    shutil.rmtree(dagster_home, ignore_errors=True)
    dagster_home.mkdir()
    url = f"sqlite:///{warehouse_file.resolve()}"
    engine = create_engine(url)
    contacts, rows = seed_warehouse(engine, subscribers)
    print(f"seeded {warehouse_file}: {contacts} CRM contacts, {rows} subscriber rows")

    port = _free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "dagster_project.sandbox", "--port", str(port)],
        env={**os.environ, "ESPUTNIK_API_KEY": DEMO_API_KEY, "ESPUTNIK_APP_UUID": DEMO_APP_UUID},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/_sandbox/state")
        with engine.connect() as conn:
            known = conn.execute(
                text(
                    "SELECT esputnik_contact_id, email FROM crm_contacts"
                    " WHERE esputnik_contact_id IS NOT NULL"
                )
            ).all()
        _post_json(f"{base}/_sandbox/contacts", [{"id": cid, "email": e} for cid, e in known])
        env = {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home.resolve()),
            "WAREHOUSE_URL": url,
            "ESPUTNIK_API_KEY": DEMO_API_KEY,
            "ESPUTNIK_APP_UUID": DEMO_APP_UUID,
            "ESPUTNIK_BASE_URL": f"{base}/api",
        }
        command = materialize_command(partition_range)
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


def print_summary(engine, held: dict) -> None:
    tokens = held["tokens"]
    resolved = Counter(t["resolved_by"] for t in tokens)
    created = sum(t["contact_created"] for t in tokens)
    with engine.connect() as conn:
        reasons = conn.execute(
            text(
                "SELECT outcome, reason, COUNT(*) FROM esputnik_sync_rejects"
                " GROUP BY outcome, reason ORDER BY outcome, reason"
            )
        ).all()
        ledger = conn.execute(text("SELECT COUNT(*) FROM esputnik_token_ledger")).scalar_one()
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
    parser.add_argument("--partition-range", default="2026-01-01...2026-11-23")
    args = parser.parse_args(argv)
    sys.exit(run_demo(args.workdir, args.subscribers, args.partition_range))


if __name__ == "__main__":
    main()
