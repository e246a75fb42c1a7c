"""The bench's printed summary (bench/report.py): repeated runs, the floor, the targets."""

from __future__ import annotations

from bench.report import floors, format_table, repeated_runs, table_row, targets
from bench.sync_run import validate_parts
from dagster_project.core.guards import Verdict
from dagster_project.core.validation import ValidationReport
from dagster_project.step_reports import ValidateReport


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


def floor_entry(backend: str, wall: float) -> dict:
    """A floor run (bench/floor.py): no run record, all of it bookkeeping."""
    return full_entry(backend, "empty", wall, rows=0)


def test_floor_is_the_median_of_each_backends_floor_runs():
    entries = [
        floor_entry("sqlite", 5.0),
        floor_entry("sqlite", 7.0),
        floor_entry("sqlite", 6.0),
        floor_entry("postgres", 4.0),
        entry("sqlite", "noop", "measured", 9.0),
    ]
    assert floors(entries) == {"sqlite": 6.0, "postgres": 4.0}


def full_entry(backend: str, case: str, wall: float, rows: int = 1_000_000) -> dict:
    phases = {f"{p}_seconds": 0.0 for p in ("extract", "validate", "diff", "push")}
    sync = {
        "wall_seconds": wall,
        "run_record": {"rows_extracted": rows},
        "bookkeeping_seconds": wall,
        "peak_rss_mb": 700.0,
        "peak_tree_rss_mb": 900.0,
        **phases,
    }
    return {"backend": backend, "case": case, "role": "measured", "sync": sync}


def test_each_row_shows_its_backends_floor_and_the_difference():
    entries = [
        floor_entry("sqlite", 5.0),
        full_entry("sqlite", "noop", 8.5),
        full_entry("postgres", "noop", 8.0),  # no floor measured for postgres
    ]
    cells = table_row(entries[1], floors(entries).get("sqlite"))
    assert (cells["floor s"], cells["- floor"]) == (5.0, 3.5)
    assert table_row(entries[2])["- floor"] is None
    table = format_table(entries)
    assert "empty (floor)" in table
    assert "+3.5" in table


def test_targets_name_each_figure_beside_its_target():
    entries = [
        floor_entry("sqlite", 5.0),
        full_entry("sqlite", "first", 40.0),
        full_entry("sqlite", "incremental", 15.0),
        full_entry("sqlite", "noop", 8.0),
        full_entry("sqlite", "noop", 6.5),
        full_entry("sqlite", "noop", 6.0),
        full_entry("postgres", "first", 60.0),
        full_entry("postgres", "noop", 6.0),
    ]
    lines = targets(entries)
    text = "\n".join(lines)
    assert "sqlite first run over 1M: 40.0s, target <= 46s" in text and ": met" in lines[1]
    assert "sqlite 1M with new rows" in text and "within the peer's range" in text
    assert "sqlite no-op over 1M: median 6.5s (floor 5.0s, +1.5s over the floor)" in text
    assert "postgres first run over 1M: 60.0s" in text and "MISSED" in text
    assert "postgres no-op over 1M: median 6.0s (no floor measured)" in text
    assert "not measured in this invocation" in text  # no 5M run


def test_memory_target_reads_the_larger_of_process_and_tree_at_5m():
    lines = targets([full_entry("sqlite", "incremental", 80.0, rows=5_000_000)])
    assert any("900 MB, target < 1,500 MB: met" in line for line in lines)


def test_validate_figures_are_read_from_the_steps_own_log_line():
    """The bench reads the validate step's breakdown from the line the step logs, so the two
    are checked against each other here."""
    validation = ValidationReport(gx_seconds=0.5, gx_import_seconds=2.6)
    validation.rows.update(unpushed=1500, validated=1200, valid=1000)
    validation.seconds.update({"read": 0.3, "normalize": 1.5, "write": 0.7, "raw suite": 0.1})
    validation.reject_counts.update(blocked=150)  # a reason list in parentheses before the seconds
    report = ValidateReport(validation, {"rows_extracted": 2000}, Verdict(True, "", {}), 3.2)
    log = f"2026-12-03 - dagster - INFO - validated_subscribers - {report.log_line()}\nnext line\n"
    assert validate_parts(log) == {
        "rows_validated": 1200,
        "validate_parts": {
            "setup": 0.0,
            "settled": 0.0,
            "read": 0.3,
            "normalize": 1.5,
            "write": 0.7,
            "raw suite": 0.1,
            "GX import": 2.6,
            "GX suite": 0.5,
        },
    }
    assert validate_parts("a run that failed before validating") == {}


def test_validate_targets_give_the_phase_per_row_and_where_it_went():
    first = full_entry("sqlite", "first", 60.0)
    first["sync"].update(
        validate_seconds=12.0,
        rows_validated=1_000_000,
        validate_parts={"read": 2.0, "normalize": 6.0, "GX suite": 4.0},
    )
    night = full_entry("sqlite", "incremental", 20.0)
    night["sync"].update(validate_seconds=1.5)
    text = "\n".join(targets([first, night]))
    assert (
        "sqlite first run over 1M, validate phase: 12.0s (12.0 µs a row of 1,000,000), "
        "target <= 10 µs a row (<= 10s): MISSED" in text
    )
    assert "where it went: read 2.0s, normalize 6.0s, GX suite 4.0s" in text
    assert "sqlite 1M with new rows, validate phase: 1.5s, target <= 2s: met" in text
    assert "where it went: not in the run log" in text
