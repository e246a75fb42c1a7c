"""Validate a batch's staged rows in token-complete chunks and store the outcome.

Memory follows the chunk, not the batch: the unpushed rows are held with compact (Arrow-backed)
strings, split so that every token's rows share one chunk (``validate_batch`` decides per token:
latest status, richest row, duplicates), and each chunk is normalized, checked by the GX suite
and written in its own short transaction before the next one starts. Writes are idempotent per
batch, so a retried or re-executed step starts from a clean slate.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine, text

from dagster_project.core.batch import DROP_REASONS, REJECT_REASONS, validate_batch
from dagster_project.core.expectations import PayloadValidator, SuiteOutcome, merge_outcomes
from dagster_project.core.settled import group_keys, is_settled, refused_groups, rules_key
from dagster_project.core.state import (
    append_frame,
    delete_batch,
    read_settled,
    read_unpushed_extract,
    utc_now,
)

REJECTS_PER_REASON = 3  # rejected rows kept per reason for the run's metadata sample


@dataclass
class ValidationReport:
    rows_unpushed: int = 0
    rows_settled: int = 0
    rows_validated: int = 0
    rows_valid: int = 0
    chunks: int = 0
    gx_seconds: float = 0.0  # of which the Great Expectations suite
    reject_counts: Counter = field(
        default_factory=lambda: Counter(dict.fromkeys(REJECT_REASONS, 0))
    )
    drop_counts: Counter = field(default_factory=lambda: Counter(dict.fromkeys(DROP_REASONS, 0)))
    rejects_sample: pd.DataFrame = field(default_factory=pd.DataFrame)
    suite: SuiteOutcome | None = None


def token_chunks(tokens: pd.Series, max_rows: int) -> list[pd.Index]:
    """Row labels in about ``len / max_rows`` chunks; all rows of a token share one chunk."""
    count = max(1, math.ceil(len(tokens) / max_rows))
    bucket = pd.util.hash_pandas_object(tokens, index=False).to_numpy() % count
    return [tokens.index[bucket == n] for n in range(count)]


def validate_staged(
    engine: Engine,
    batch_id: str,
    app_uuid: str,
    run_id: str,
    default_region: str | None,
    chunk_rows: int,
    log: Callable[[str], None] = print,
) -> ValidationReport:
    """Validate the batch's unpushed, unsettled rows; fill esputnik_stage_valid and the rejects."""
    params = {"batch_id": batch_id}
    with engine.begin() as conn:
        delete_batch(conn, "esputnik_stage_valid", batch_id)
        for table in ("esputnik_sync_rejects", "esputnik_settled_rejects"):
            conn.execute(text(f"DELETE FROM {table} WHERE batch_id = :batch_id"), params)
    unpushed = read_unpushed_extract(engine, batch_id, app_uuid)
    rules, now = rules_key(default_region), utc_now()
    keys = group_keys(unpushed)
    settled = is_settled(keys, read_settled(engine, app_uuid, rules))
    chunks = token_chunks(keys.loc[~settled, "token"], chunk_rows)
    report = ValidationReport(
        rows_unpushed=len(unpushed), rows_settled=int(settled.sum()), chunks=len(chunks)
    )
    validator, outcomes, samples = PayloadValidator(), [], []
    for number, rows in enumerate(chunks, start=1):
        raw = unpushed.loc[rows]
        result = validate_batch(raw, default_region)
        started = time.perf_counter()
        outcomes.append(validator.validate(result.accepted))
        report.gx_seconds += time.perf_counter() - started
        refused = refused_groups(keys.loc[rows], raw, result.accepted)
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
        report.rows_validated += len(raw)
        report.rows_valid += len(result.accepted)
        report.reject_counts.update(result.reject_counts())
        report.drop_counts.update(result.drop_counts())
        samples.append(result.rejects.groupby("reason", sort=True).head(REJECTS_PER_REASON))
        if len(chunks) > 1:
            log(
                f"validated chunk {number}/{len(chunks)}: {report.rows_validated:,} rows, "
                f"{report.rows_valid:,} valid so far"
            )
    if samples:  # reporting.rejects_sample picks the final rows per reason from these
        report.rejects_sample = pd.concat(samples, ignore_index=True)
    report.suite = merge_outcomes(outcomes)
    return report
