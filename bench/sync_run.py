"""One measured run of the real sync: the ``dagster asset materialize`` CLI in a subprocess.

The CLI runs under ``bench.measure`` (a fresh helper process) so that wall time and peak RSS
belong to this run alone. Seconds per phase come from the run's row in ``esputnik_sync_runs``;
whatever the wall time holds beyond them (interpreter and Dagster start-up, definitions loading,
event log writes, the GX context, ...) is reported as bookkeeping.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.floor import floor_command
from bench.sandbox import API_KEY, APP_UUID
from bench.warehouse import Warehouse, latest_run, opened
from dagster_project.demo import materialize_command

PHASES = ("extract", "validate", "diff", "push")
# The validate step's log line (step_reports.ValidateReport.log_line): how many rows it
# validated and where its seconds went, e.g. "of the other 1,000: ... 2.0s (read 0.1s, ...,
# GX import 0.0s, GX suite 0.5s)".
VALIDATE_LINE = re.compile(
    r"of the other (?P<rows>[\d,]+): .*; (?P<seconds>[\d.]+)s \((?P<parts>[^()]*GX suite [\d.]+s)\)"
)
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunSettings:
    chunk_size: int = 1000
    dagster_home: Path = Path()
    logs: Path = Path()
    profiler: str | None = None  # 'py-spy' or 'pyinstrument'
    extra_env: dict[str, str] = field(default_factory=dict)


def dagster_command() -> list[str]:
    """The measured sync: the CLI call with no run config, i.e. every subscriber."""
    return materialize_command()


def profiler_installed(profiler: str) -> bool:
    if profiler == "py-spy":
        return Path(sys.executable).with_name("py-spy").exists()
    return importlib.util.find_spec(profiler) is not None


def _profiled(command: list[str], profiler: str | None, output: Path) -> list[str]:
    """Wrap the CLI in a sampling profiler when asked (its overhead then skews the figures)."""
    if profiler == "py-spy":
        spy = Path(sys.executable).with_name("py-spy")
        return [
            str(spy),
            "record",
            "--format",
            "raw",
            "--rate",
            "100",
            "-o",
            str(output),
            "--",
            *command,
        ]
    if profiler == "pyinstrument":
        # Runs the dagster CLI's entry point in pyinstrument's interpreter session.
        return [
            sys.executable,
            "-m",
            "pyinstrument",
            "-r",
            "text",
            "-o",
            str(output),
            "-m",
            "dagster",
            *command[1:],
        ]
    return command


def _measured(
    command: list[str], env: dict[str, str], settings: RunSettings, label: str
) -> dict[str, object]:
    """Run ``command`` under ``bench.measure`` (profiled when asked); its measurements."""
    suffix = ".collapsed.txt" if settings.profiler == "py-spy" else ".txt"
    profile = settings.logs / f"{label}.profile{suffix}"
    command = _profiled(command, settings.profiler, profile)
    out = settings.logs / f"{label}.measure.json"
    log = settings.logs / f"{label}.log"
    helper = [sys.executable, "-m", "bench.measure", "--out", str(out), "--log", str(log)]
    helper += ["--cwd", str(settings.dagster_home.parent), "--"]
    # the helper imports bench from the repository; the CLI itself runs in the work dir
    subprocess.run([*helper, *command], env=env, check=True, cwd=str(REPO_ROOT))
    measured = json.loads(out.read_text())
    result: dict[str, object] = {
        **measured,
        "log": str(log),
        "profile": str(profile) if settings.profiler else None,
    }
    if measured["returncode"] != 0:
        result["error_tail"] = log.read_text(errors="replace").splitlines()[-25:]
    return result


def _base_env(settings: RunSettings) -> dict[str, str]:
    env = {**os.environ, "DAGSTER_HOME": str(settings.dagster_home), **settings.extra_env}
    for name in ("SYNC_STATE_URL", "WAREHOUSE_EXTRACT_SQL", "SYNC_DRY_RUN"):
        if name not in settings.extra_env:
            env.pop(name, None)
    return env


def run_floor(settings: RunSettings, label: str) -> dict[str, object]:
    """The floor run (bench/floor.py): a one-asset run that does nothing, measured the same way.

    It reads no warehouse, so its phases are zero and all its wall time is bookkeeping.
    """
    env = _base_env(settings)
    # bench.floor comes from the repository; a snapshot's PYTHONPATH stays in front of it
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO_ROOT)) if p)
    result = _measured(floor_command(), env, settings, label)
    wall = float(result["wall_seconds"])
    return {
        **result,
        "run_record": {},
        **{f"{p}_seconds": 0.0 for p in PHASES},
        "bookkeeping_seconds": wall,
    }


def run_sync(
    warehouse: Warehouse, base_url: str, settings: RunSettings, label: str
) -> dict[str, object]:
    """Materialize the group once over every subscriber; return measurements and phase seconds."""
    env = {
        **_base_env(settings),
        "WAREHOUSE_URL": warehouse.url,
        "ESPUTNIK_API_KEY": API_KEY,
        "ESPUTNIK_APP_UUID": APP_UUID,
        "ESPUTNIK_BASE_URL": base_url,
        "ESPUTNIK_CHUNK_SIZE": str(settings.chunk_size),
        **settings.extra_env,
    }
    result = _measured(dagster_command(), env, settings, label)
    with opened(warehouse) as engine:
        record = latest_run(engine) or {}
    phases = {p: float(record.get(f"{p}_seconds") or 0.0) for p in PHASES}
    wall = float(result["wall_seconds"])
    return {
        **result,
        **validate_parts(Path(str(result["log"])).read_text(errors="replace")),
        "run_record": {k: (v if isinstance(v, int | float) else str(v)) for k, v in record.items()},
        **{f"{p}_seconds": s for p, s in phases.items()},
        "bookkeeping_seconds": wall - sum(phases.values()),
    }


def validate_parts(log: str) -> dict[str, object]:
    """From a run's log, the rows the validate step validated and its seconds by part (setup,
    settled, read, normalize, write, raw suite, GX import, GX suite); empty when the step logged
    no such line."""
    found = list(VALIDATE_LINE.finditer(log))
    if not found:
        return {}
    last = found[-1]
    parts = {}
    for part in last["parts"].split(", "):
        name, _, seconds = part.rpartition(" ")
        parts[name] = float(seconds.rstrip("s"))
    return {"rows_validated": int(last["rows"].replace(",", "")), "validate_parts": parts}
