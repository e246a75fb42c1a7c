"""Validate a batch's staged rows in token-complete buckets and store the outcome.

Memory follows the bucket, not the batch: the unpushed rows come in buckets of about
``chunk_rows`` rows in which every token has all its rows (``validate_batch`` decides per token:
latest status, richest row, duplicates; see core/buckets.py), and each bucket is normalized,
checked by the GX suite and written in its own short transaction before the next one is read.
Writes are idempotent per batch, so a retried or re-executed step starts from a clean slate.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, text

from dagster_project.core.batch import (
    DROP_REASONS,
    REJECT_REASONS,
    ValidatedBatch,
    validate_batch,
)
from dagster_project.core.buckets import bucket_count, unpushed_buckets
from dagster_project.core.db import append_frame, utc_now
from dagster_project.core.expectations import (
    PayloadValidator,
    SuiteOutcome,
    import_seconds,
    merge_outcomes,
)
from dagster_project.core.extract_expectations import (
    NO_ROWS,
    RawBounds,
    RawCheck,
    check_raw_frame,
    raw_frame,
)
from dagster_project.core.phones import phone_engine_name
from dagster_project.core.settled import (
    read_settled,
    refused_groups,
    rules_key,
    settled_rows,
    tokens_of,
)
from dagster_project.core.staging import count_batch, delete_batch

REJECTS_PER_REASON = 3  # rejected rows kept per reason for the run's metadata sample


# Where the batch's rows went: unpushed (read), settled (refused before, unchanged since),
# validated (the rest), valid (to send).
ROW_COUNTS = ("unpushed", "settled", "validated", "valid")
# Where the step's seconds went besides Great Expectations, in the order they are spent:
# clearing the batch's earlier outputs and counting its rows; looking up the groups refused
# before, screening the rows against them and hashing the groups refused now; reading the rows;
# normalizing them (the phone engine's choice included); writing the outcome; the raw suite.
SECOND_PARTS = ("setup", "settled", "read", "normalize", "write", "raw suite")


@dataclass
class ValidationReport:
    rows: Counter = field(default_factory=lambda: Counter(dict.fromkeys(ROW_COUNTS, 0)))
    chunks: int = 0
    gx_seconds: float = 0.0  # of which spent on the Great Expectations payload suite
    gx_import_seconds: float = 0.0  # and on importing GX (a process's first suite run)
    seconds: Counter = field(default_factory=lambda: Counter(dict.fromkeys(SECOND_PARTS, 0.0)))
    phone_engine: str = ""  # the library that checked the phone numbers (core/phones.py)
    reject_counts: Counter = field(
        default_factory=lambda: Counter(dict.fromkeys(REJECT_REASONS, 0))
    )
    drop_counts: Counter = field(default_factory=lambda: Counter(dict.fromkeys(DROP_REASONS, 0)))
    rejects_sample: pd.DataFrame = field(default_factory=pd.DataFrame)
    suite: SuiteOutcome | None = None
    raw: RawCheck | None = None  # the raw-extract suite over the rows validated


def _timed(buckets: Iterator[pd.DataFrame], seconds: Counter) -> Iterator[pd.DataFrame]:
    """The buckets, with the time spent reading them added to ``seconds["read"]``. It keeps no
    reference to the bucket it handed out, so the caller can free it."""
    while True:
        with _part(seconds, "read"):
            held = list(itertools.islice(buckets, 1))
        if not held:
            return
        yield held.pop()


@contextmanager
def _part(seconds: Counter, name: str) -> Iterator[None]:
    """The time spent in the block, added to ``seconds[name]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] += time.perf_counter() - started


def _suite_seconds(started: float, imported_before: float, report: ValidationReport) -> float:
    """Seconds since ``started``, less the GX import they took in, which goes to the report's
    ``gx_import_seconds``: a process's first suite run also pays the import, seconds that do
    not grow with the rows and would otherwise read as the suite's own cost."""
    importing = import_seconds() - imported_before
    report.gx_import_seconds += importing
    return time.perf_counter() - started - importing


def _store(
    engine: Engine,
    result: ValidatedBatch,
    refused: pd.DataFrame,
    run_id: str,
    batch_id: str,
    app_uuid: str,
    rules: str,
    now: datetime,
) -> None:
    """One bucket's rows to send, rejects and settled refusals, in one short transaction."""
    with engine.begin() as conn:
        append_frame(conn, "esputnik_stage_valid", result.accepted.assign(batch_id=batch_id))
        append_frame(
            conn,
            "esputnik_sync_rejects",
            result.rejects.assign(run_id=run_id, batch_id=batch_id, recorded_at=now),
        )
        append_frame(
            conn,
            "esputnik_settled_rejects",
            refused.assign(app_uuid=app_uuid, rules=rules, batch_id=batch_id, settled_at=now),
        )


def validate_staged(
    engine: Engine,
    batch_id: str,
    app_uuid: str,
    run_id: str,
    default_region: str | None,
    chunk_rows: int,
    log: Callable[[str], None] = print,
    recheck_ledger: bool = True,
    raw_bounds: RawBounds | None = None,
) -> ValidationReport:
    """Validate the batch's unpushed, unsettled rows; fill esputnik_stage_valid and the rejects.

    ``recheck_ledger=False`` when the extract already left out pushed tokens (state and
    warehouse in one database). With ``raw_bounds`` the raw-extract suite checks the rows
    validated, as the warehouse gave them. Great Expectations is imported only once there are
    rows to check: a run with nothing new never pays for its import."""
    report = ValidationReport()
    seconds = report.seconds
    params = {"batch_id": batch_id}
    with _part(seconds, "setup"):
        with engine.begin() as conn:
            delete_batch(conn, "esputnik_stage_valid", batch_id)
            for table in ("esputnik_sync_rejects", "esputnik_settled_rejects"):
                conn.execute(text(f"DELETE FROM {table} WHERE batch_id = :batch_id"), params)
        count = bucket_count(count_batch(engine, "esputnik_stage_extract", batch_id), chunk_rows)
    rules, now = rules_key(default_region), utc_now()
    with _part(seconds, "settled"):
        settled_before = read_settled(engine, app_uuid, rules)
    samples = []
    buckets = _timed(unpushed_buckets(engine, batch_id, app_uuid, count, recheck_ledger), seconds)
    suite, outcomes, raw_rows = PayloadValidator(), [], []
    for number, bucket in enumerate(buckets, 1):
        with _part(seconds, "settled"):
            tokens = tokens_of(bucket["chat_id"])
            settled = settled_rows(bucket, tokens, settled_before)
        report.rows["unpushed"] += len(bucket)
        report.rows["settled"] += int(settled.sum())
        # with nothing settled (a first run) the bucket itself: a copy would double its memory
        raw = bucket.loc[~settled] if settled.any() else bucket
        tokens = tokens.loc[~settled]
        del bucket
        if raw.empty:
            continue
        raw_rows.append(raw_frame(raw))
        if not report.phone_engine:  # its first use checks the engine against the reference
            with _part(seconds, "normalize"):
                report.phone_engine = phone_engine_name()
            log(f"phone numbers checked by {report.phone_engine}")
        with _part(seconds, "normalize"):
            result = validate_batch(raw, default_region)
        with _part(seconds, "settled"):
            refused = refused_groups(raw, tokens, result.accepted)
        report.rows["validated"] += len(raw)
        del raw, tokens  # the bucket is not needed past here: freed before the suite runs
        started, imported = time.perf_counter(), import_seconds()
        outcomes.append(suite.validate(result.accepted))
        report.gx_seconds += _suite_seconds(started, imported, report)
        with _part(seconds, "write"):
            _store(engine, result, refused, run_id, batch_id, app_uuid, rules, now)
        report.chunks += 1
        report.rows["valid"] += len(result.accepted)
        report.reject_counts.update(result.reject_counts())
        report.drop_counts.update(result.drop_counts())
        samples.append(result.rejects.groupby("reason", sort=True).head(REJECTS_PER_REASON))
        if count > 1:
            log(
                f"validated bucket {number} of up to {count}: {report.rows['validated']:,} "
                f"rows, {report.rows['valid']:,} valid so far"
            )
    if samples:  # metadata_tables.rejects_sample picks the final rows per reason from these
        report.rejects_sample = pd.concat(samples, ignore_index=True)
    report.suite = merge_outcomes(outcomes)
    if raw_bounds is not None:
        started, imported = time.perf_counter(), import_seconds()
        frame = pd.concat(raw_rows, ignore_index=True) if raw_rows else raw_frame(NO_ROWS)
        checked = check_raw_frame(frame, raw_bounds)
        report.raw = replace(checked, seconds=_suite_seconds(started, imported, report))
        seconds["raw suite"] += report.raw.seconds
    return report
