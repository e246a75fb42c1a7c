"""The bench's summary of repeated runs (bench/report.py), on hand-made entries."""

from __future__ import annotations

from bench.report import repeated_runs


def entry(backend: str, case: str, role: str, wall: float, rows: int = 1000, **extra) -> dict:
    record = {"rows_extracted": rows}
    return {"backend": backend, "case": case, "role": role, **extra} | {
        "sync": {"wall_seconds": wall, "run_record": record}
    }


def test_repeated_measured_runs_get_a_median_line_each():
    entries = [
        entry("sqlite", "noop", "setup", 99.0),  # setup runs are not measured
        entry("sqlite", "noop", "measured", 12.0),
        entry("sqlite", "noop", "measured", 9.0),
        entry("sqlite", "noop", "measured", 10.0),
        entry("sqlite", "noop", "measured", 50.0, failed=True),  # a failed run is left out
        entry("postgres", "noop", "measured", 8.0),  # measured once: no summary
        entry("postgres", "noop", "measured", 7.0, rows=2000),  # another size: its own group
    ]
    assert repeated_runs(entries) == [
        "sqlite noop over 1,000 rows: median wall 10.0s of 3 runs (9.0-12.0s)"
    ]


def test_single_runs_get_no_summary():
    assert repeated_runs([entry("sqlite", "first", "measured", 30.0)]) == []
