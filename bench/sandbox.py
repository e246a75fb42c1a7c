"""The bundled eSputnik sandbox in its own process, seeded with the contacts eSputnik would hold.

Its own process, so the sandbox's request handling never competes with the measured run for the
GIL (it still shares the machine's cores). Contacts are pre-registered as in production, where
CRM-linked subscribers already exist in eSputnik, so most tokens resolve to a known contact by
dictionary look-up.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

API_KEY = "bench-api-key"
APP_UUID = "7d1c5a9e-0b2f-4c3d-9e8f-1a2b3c4d5e6f"
BASELINE_APP_UUID = "8e2d6b0f-1c3a-4d4e-8f90-2b3c4d5e6f70"
SEED_BATCH = 100_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sandbox:
    """``python -m dagster_project.sandbox`` on a free loopback port, for one measured run."""

    def __init__(self, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/api"
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster_project.sandbox",
                "--port",
                str(self.port),
                "--api-key",
                API_KEY,
                "--app-uuid",
                APP_UUID,
                "--app-uuid",
                BASELINE_APP_UUID,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(extra_env or {})},
        )
        self._wait_ready()

    def _wait_ready(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the sandbox exited with {self.process.returncode}")
            try:
                # 404 is an answer too: the server is up (the state route would dump everything)
                urllib.request.urlopen(f"{self.root}/_bench_ping", timeout=1).read()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the sandbox did not answer at {self.root}") from None
                time.sleep(0.1)

    def _post(self, path: str, payload: object) -> None:
        request = urllib.request.Request(
            f"{self.root}{path}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()

    def seed_contacts(self, contacts: Sequence[dict]) -> None:
        """Register contacts eSputnik already knows (see the module docstring)."""
        for start in range(0, len(contacts), SEED_BATCH):
            self._post("/_sandbox/contacts", list(contacts[start : start + SEED_BATCH]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
