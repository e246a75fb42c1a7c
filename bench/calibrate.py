"""A fixed yardstick of the machine's speed, taken before and after the cases.

The same code on the same 2-core machine kind can run twice as slow on another day (the host is
shared). Two small fixed workloads, a pure-Python loop and SQLite index look-ups, put a number on
that, so figures from different days are compared only at similar readings, and a reading that
moved between the start and the end says the machine changed speed during the run.
"""

from __future__ import annotations

import sqlite3
import time

LOOP_ITERATIONS = 5_000_000
SQLITE_ROWS = 200_000


def _python_loop() -> float:
    """Million loop iterations per second (interpreter speed: normalization, Dagster)."""
    started = time.perf_counter()
    total = 0
    for value in range(LOOP_ITERATIONS):
        total += value
    return LOOP_ITERATIONS / (time.perf_counter() - started) / 1e6


def _sqlite_probes() -> float:
    """Thousand index look-ups per second in one statement (the ledger anti-join's shape)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t (k TEXT)")
        conn.executemany(
            "INSERT INTO t VALUES (?)",
            ((f"{i * 7919 % SQLITE_ROWS:09d}",) for i in range(SQLITE_ROWS)),
        )
        conn.execute("CREATE INDEX ix_t ON t (k)")
        conn.execute("CREATE TABLE p AS SELECT k FROM t ORDER BY random()")
        started = time.perf_counter()
        conn.execute(
            "SELECT COUNT(*) FROM p WHERE EXISTS (SELECT 1 FROM t WHERE t.k = p.k)"
        ).fetchone()
        return SQLITE_ROWS / (time.perf_counter() - started) / 1e3
    finally:
        conn.close()


def machine_speed() -> dict[str, float]:
    """Both readings, rounded; higher is faster."""
    return {
        "python_loop_mops": round(_python_loop(), 1),
        "sqlite_probe_kops": round(_sqlite_probes(), 0),
    }


def describe(reading: dict[str, float]) -> str:
    return (
        f"{reading['python_loop_mops']} M Python loop iterations/s, "
        f"{reading['sqlite_probe_kops']:,.0f} k SQLite index look-ups/s"
    )
