"""The printed table and the JSON file of a bench invocation."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from dagster_project.core.pacing import rate_limit_busy

RESULTS_DIR = Path(__file__).resolve().parent / "results"

COLUMNS = (
    ("backend", 8, "{}"),
    ("rows", 9, "{:,}"),
    ("case", 18, "{}"),
    ("new", 8, "{:,}"),
    ("pushed", 8, "{:,}"),
    ("extract", 8, "{:.1f}"),
    ("validate", 8, "{:.1f}"),
    ("diff", 6, "{:.1f}"),
    ("push", 7, "{:.1f}"),
    ("bookkeep", 8, "{:.1f}"),
    ("wall s", 7, "{:.1f}"),
    ("rows/s", 8, "{:,.0f}"),
    ("push tok/s", 10, "{:,.0f}"),
    ("limit busy", 10, "{:.0%}"),
    ("RSS MB", 7, "{:,.0f}"),
    ("tree MB", 7, "{:,.0f}"),
    ("naive rows/s*", 13, "{:,.0f}"),
    ("speed-up", 8, "{:,.1f}x"),
)


def table_row(entry: dict) -> dict[str, object]:
    """The table's cells for one run (None where a figure does not apply)."""
    sync = entry["sync"]
    record = sync.get("run_record", {}) if not entry.get("failed") else {}
    baseline = entry.get("baseline") or {}
    push = sync["push_seconds"]
    pushed = int(record.get("tokens_pushed") or 0)
    return {
        "backend": entry["backend"],
        "rows": int(record.get("rows_extracted") or 0),
        "case": (entry["case"] if entry["role"] == "measured" else f"({entry['case']} setup)")
        + (" FAILED" if entry.get("failed") else ""),
        "new": int(record.get("tokens_new") or 0),
        "pushed": pushed,
        "extract": sync["extract_seconds"],
        "validate": sync["validate_seconds"],
        "diff": sync["diff_seconds"],
        "push": push,
        "bookkeep": sync["bookkeeping_seconds"],
        "wall s": sync["wall_seconds"],
        "rows/s": entry.get("rows_per_second"),
        "push tok/s": pushed / push if push and pushed else None,
        "limit busy": rate_limit_busy(
            int(record.get("requests_sent") or 0),
            float(record.get("sending_seconds") or 0.0),
            float(record.get("requests_per_second_limit") or 0.0),
        ),
        "RSS MB": sync["peak_rss_mb"],
        "tree MB": sync.get("peak_tree_rss_mb"),
        "naive rows/s*": baseline.get("estimated_rows_per_second"),
        "speed-up": entry.get("speedup"),
    }


def repeated_runs(entries: list[dict]) -> list[str]:
    """One line per case measured more than once: median wall time and the spread."""
    walls: dict[tuple[str, int, str], list[float]] = {}
    for entry in entries:
        if entry["role"] == "measured" and not entry.get("failed"):
            rows = int(entry["sync"]["run_record"].get("rows_extracted") or 0)
            key = (entry["backend"], rows, entry["case"])
            walls.setdefault(key, []).append(float(entry["sync"]["wall_seconds"]))
    return [
        f"{backend} {case} over {rows:,} rows: median wall {statistics.median(times):.1f}s "
        f"of {len(times)} runs ({min(times):.1f}-{max(times):.1f}s)"
        for (backend, rows, case), times in walls.items()
        if len(times) > 1
    ]


def format_table(entries: list[dict]) -> str:
    header = "  ".join(name.rjust(width) for name, width, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for entry in entries:
        cells = table_row(entry)
        lines.append(
            "  ".join(
                ("-" if cells[name] is None else fmt.format(cells[name])).rjust(width)
                for name, width, fmt in COLUMNS
            )
        )
    lines.append(
        "seconds per phase from esputnik_sync_runs; bookkeep = wall - phases (CLI start-up, "
        "Dagster, GX context); push tok/s = pushed / push seconds; limit busy = requests sent per "
        "second over ESPUTNIK_REQUESTS_PER_SECOND (--requests-per-second); RSS = peak of the run's "
        "process; tree = peak of it and its helper processes together (sampled every 0.2 s)."
    )
    lines.extend(repeated_runs(entries))
    lines.append(
        "* naive rows/s is EXTRAPOLATED from a random sample processed row by row "
        "(see 'baseline' in the JSON); speed-up = sync rows/s / naive rows/s."
    )
    return "\n".join(lines)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=RESULTS_DIR.parent
        )
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def environment() -> dict[str, object]:
    """What the figures depend on: machine, Python, and the code's commit and local edits."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_modified": _git("status", "--porcelain").splitlines(),
    }


def snapshot_code(target: Path) -> dict[str, object]:
    """Copy the working tree's ``dagster_project`` to ``target`` and fingerprint it.

    The measured runs import the copy (PYTHONPATH), so edits made to the repository while a
    long bench runs cannot change the code half-way through; the digest says which code ran.
    """
    source = RESULTS_DIR.parent.parent / "dagster_project"
    shutil.copytree(
        source, target / "dagster_project", ignore=shutil.ignore_patterns("__pycache__")
    )
    digest = hashlib.sha256()
    for path in sorted((target / "dagster_project").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(target)).encode())
            digest.update(path.read_bytes())
    return {
        "path": str(target),
        "sha256": digest.hexdigest(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_modified": _git("status", "--porcelain", "--", "dagster_project").splitlines(),
    }


def write_json(payload: dict, stamp: str) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
