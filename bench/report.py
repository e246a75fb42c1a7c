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
FLOOR_CASE = "empty"  # bench/cases.py: the floor run's entries

# Targets, printed beside the figures (never asserted). The peer is a dlt pipeline doing the same
# job, measured at 92-115 s for a first run over 1M rows and 13-17 s for a night with 100k new.
TARGET_ROWS = 1_000_000
FIRST_RUN_TARGET = 46.0  # half the peer's fastest first run
NEW_ROWS_TARGET = (13.0, 17.0)  # the peer's night with 100k new rows
NOOP_OVER_FLOOR_TARGET = 2.0
MEMORY_TARGET_MB = 1_500.0
# The validate phase: at most 10 µs a row validated on a first run over 1M rows (so <= 10 s),
# and <= 2 s on a night with 100k new rows.
VALIDATE_US_PER_ROW_TARGET = 10.0
NIGHT_VALIDATE_TARGET = 2.0
MEMORY_TARGET_ROWS = 5_000_000
CASE_TARGETS = ("first", "incremental", "noop")

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
    ("floor s", 7, "{:.1f}"),
    ("- floor", 7, "{:+.1f}"),
    ("rows/s", 8, "{:,.0f}"),
    ("push tok/s", 10, "{:,.0f}"),
    ("limit busy", 10, "{:.0%}"),
    ("RSS MB", 7, "{:,.0f}"),
    ("tree MB", 7, "{:,.0f}"),
    ("naive rows/s*", 13, "{:,.0f}"),
    ("speed-up", 8, "{:,.1f}x"),
)


def _measured(entries: list[dict]) -> list[dict]:
    return [e for e in entries if e["role"] == "measured" and not e.get("failed")]


def _rows(entry: dict) -> int:
    return int(entry["sync"].get("run_record", {}).get("rows_extracted") or 0)


def _case_name(case: str) -> str:
    return "empty (floor)" if case == FLOOR_CASE else case


def floors(entries: list[dict]) -> dict[str, float]:
    """Per backend, the median wall time of its floor runs (bench/floor.py)."""
    walls: dict[str, list[float]] = {}
    for entry in _measured(entries):
        if entry["case"] == FLOOR_CASE:
            walls.setdefault(entry["backend"], []).append(float(entry["sync"]["wall_seconds"]))
    return {backend: statistics.median(times) for backend, times in walls.items()}


def table_row(entry: dict, floor: float | None = None) -> dict[str, object]:
    """The table's cells for one run (None where a figure does not apply); ``floor`` is the
    median floor run of the entry's backend, when one was measured."""
    sync = entry["sync"]
    record = sync.get("run_record", {}) if not entry.get("failed") else {}
    baseline = entry.get("baseline") or {}
    push = sync["push_seconds"]
    pushed = int(record.get("tokens_pushed") or 0)
    return {
        "backend": entry["backend"],
        "rows": int(record.get("rows_extracted") or 0),
        "case": (
            _case_name(entry["case"]) if entry["role"] == "measured" else f"({entry['case']} setup)"
        )
        + (" FAILED" if entry.get("failed") else ""),
        "new": int(record.get("tokens_new") or 0),
        "pushed": pushed,
        "extract": sync["extract_seconds"],
        "validate": sync["validate_seconds"],
        "diff": sync["diff_seconds"],
        "push": push,
        "bookkeep": sync["bookkeeping_seconds"],
        "wall s": sync["wall_seconds"],
        "floor s": floor,
        "- floor": None if floor is None else sync["wall_seconds"] - floor,
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


def _walls(entries: list[dict]) -> dict[tuple[str, int, str], list[float]]:
    """Wall times of the measured runs by (backend, rows, case), in run order."""
    walls: dict[tuple[str, int, str], list[float]] = {}
    for entry in _measured(entries):
        key = (entry["backend"], _rows(entry), entry["case"])
        walls.setdefault(key, []).append(float(entry["sync"]["wall_seconds"]))
    return walls


def repeated_runs(entries: list[dict]) -> list[str]:
    """One line per case measured more than once: median wall time and the spread."""
    walls = _walls(entries)
    return [
        f"{backend} {_case_name(case)} over {rows:,} rows: median wall "
        f"{statistics.median(times):.1f}s of {len(times)} runs ({min(times):.1f}-{max(times):.1f}s)"
        for (backend, rows, case), times in walls.items()
        if len(times) > 1
    ]


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _median_wall(
    walls: dict[tuple[str, int, str], list[float]], backend: str, case: str
) -> float | None:
    """The median wall time of the backend's 1M runs of ``case``; None when none ran."""
    times = walls.get((backend, TARGET_ROWS, case))
    return statistics.median(times) if times else None


def targets(entries: list[dict]) -> list[str]:
    """One line per target and backend: the measured figure beside the target (medians of
    repeated runs). Speed targets are for 1M rows, the memory target for 5M."""
    floor_of = floors(entries)
    walls = _walls(entries)
    lines: list[str] = []
    backends = list(dict.fromkeys(e["backend"] for e in _measured(entries)))
    for backend in backends:
        floor = floor_of.get(backend)
        floor_note = "no floor measured" if floor is None else f"floor {floor:.1f}s"
        wall = _median_wall(walls, backend, "first")
        if wall is not None:
            lines.append(
                f"{backend} first run over 1M: {wall:.1f}s, target <= {FIRST_RUN_TARGET:.0f}s "
                f"(half the peer's 92-115 s): {_verdict(wall <= FIRST_RUN_TARGET)}"
            )
        wall = _median_wall(walls, backend, "incremental")
        if wall is not None:
            low, high = NEW_ROWS_TARGET
            verdict = "met" if wall <= low else "within the peer's range" if wall <= high else None
            lines.append(
                f"{backend} 1M with new rows (old subscription dates among them): {wall:.1f}s, "
                f"target <= the peer's {low:.0f}-{high:.0f}s: {verdict or 'MISSED'}"
            )
        wall = _median_wall(walls, backend, "noop")
        if wall is not None:
            over = "" if floor is None else f", {wall - floor:+.1f}s over the floor"
            verdict = (
                "no floor to compare"
                if floor is None
                else _verdict(wall - floor <= NOOP_OVER_FLOOR_TARGET)
            )
            lines.append(
                f"{backend} no-op over 1M: median {wall:.1f}s ({floor_note}{over}), target "
                f"within {NOOP_OVER_FLOOR_TARGET:.0f}s of the floor: {verdict}"
            )
        lines.extend(validate_targets(entries, backend))
    big = [e for e in _measured(entries) if _rows(e) >= MEMORY_TARGET_ROWS]
    if big:
        peak = max(
            max(e["sync"]["peak_rss_mb"], e["sync"].get("peak_tree_rss_mb") or 0) for e in big
        )
        lines.append(
            f"peak RSS at 5M rows or more (run or its process tree): {peak:,.0f} MB, target "
            f"< {MEMORY_TARGET_MB:,.0f} MB: {_verdict(peak < MEMORY_TARGET_MB)}"
        )
    else:
        lines.append(
            f"peak RSS target < {MEMORY_TARGET_MB:,.0f} MB at 5M rows: not measured in this "
            "invocation (python -m bench --sizes 5000000 --cases incremental)"
        )
    if not any(walls.get((b, TARGET_ROWS, c)) for b in backends for c in CASE_TARGETS):
        lines.insert(0, "(speed targets are for 1M rows; none measured in this invocation)")
    return ["targets (printed, not asserted):", *(f"  {line}" for line in lines)]


def _median_validate(entries: list[dict], backend: str, case: str) -> dict | None:
    """The sync figures of the backend's 1M run of ``case`` with the median validate phase."""
    runs = [
        e["sync"]
        for e in _measured(entries)
        if (e["backend"], _rows(e), e["case"]) == (backend, TARGET_ROWS, case)
    ]
    runs.sort(key=lambda sync: float(sync.get("validate_seconds") or 0.0))
    return runs[(len(runs) - 1) // 2] if runs else None


def _where_validate_went(sync: dict) -> str:
    parts = sync.get("validate_parts") or {}
    spent = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in parts.items())
    return f"    where it went: {spent or 'not in the run log'}"


def validate_targets(entries: list[dict], backend: str) -> list[str]:
    """The validate phase against its targets, each with where its seconds went (the step's
    own breakdown, from the run's log)."""
    lines = []
    first = _median_validate(entries, backend, "first")
    if first is not None:
        seconds, rows = float(first.get("validate_seconds") or 0.0), first.get("rows_validated")
        per_row = f"{seconds / rows * 1e6:.1f} µs a row of {rows:,}" if rows else "rows unknown"
        bound = VALIDATE_US_PER_ROW_TARGET
        met = bool(rows) and seconds / rows * 1e6 <= bound
        lines += [
            f"{backend} first run over 1M, validate phase: {seconds:.1f}s ({per_row}), target "
            f"<= {bound:.0f} µs a row (<= {bound * TARGET_ROWS / 1e6:.0f}s): {_verdict(met)}",
            _where_validate_went(first),
        ]
    night = _median_validate(entries, backend, "incremental")
    if night is not None:
        seconds = float(night.get("validate_seconds") or 0.0)
        lines += [
            f"{backend} 1M with new rows, validate phase: {seconds:.1f}s, target <= "
            f"{NIGHT_VALIDATE_TARGET:.0f}s: {_verdict(seconds <= NIGHT_VALIDATE_TARGET)}",
            _where_validate_went(night),
        ]
    return lines


def format_table(entries: list[dict]) -> str:
    header = "  ".join(name.rjust(width) for name, width, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    floor_of = floors(entries)
    for entry in entries:
        cells = table_row(entry, floor_of.get(entry["backend"]))
        lines.append(
            "  ".join(
                ("-" if cells[name] is None else fmt.format(cells[name])).rjust(width)
                for name, width, fmt in COLUMNS
            )
        )
    lines.append(
        "seconds per phase from esputnik_sync_runs; bookkeep = wall - phases (CLI start-up, "
        "Dagster, GX context); floor s = median wall of the backend's floor runs (bench/floor.py: "
        "a one-asset Dagster run that does nothing, same CLI and instance); - floor = wall - "
        "floor s; push tok/s = pushed / push seconds; limit busy = requests sent per "
        "second over ESPUTNIK_REQUESTS_PER_SECOND (--requests-per-second); RSS = peak of the run's "
        "process; tree = peak of it and its helper processes together (sampled every 0.2 s)."
    )
    lines.extend(repeated_runs(entries))
    lines.append(
        "* naive rows/s is EXTRAPOLATED from a random sample processed row by row "
        "(see 'baseline' in the JSON); speed-up = sync rows/s / naive rows/s."
    )
    lines.extend(targets(entries))
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
