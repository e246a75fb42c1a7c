"""Each sync step's work, between the resources and the pure core: run the core, keep the run's
record in ``esputnik_sync_runs`` up to date, and turn what can go wrong into a ``Failure`` that
names the setting or table involved. The assets call one function each; reporting.py turns the
returned reports into metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from dagster import Failure
from sqlalchemy.exc import SQLAlchemyError

from dagster_project.core.buckets import SpillError
from dagster_project.core.db import utc_now
from dagster_project.core.esputnik import EsputnikError, EsputnikUnavailableError
from dagster_project.core.extract import (
    ExtractError,
    extract_batch,
    stages_unpushed_only,
    unreadable_timestamps,
)
from dagster_project.core.guards import Verdict, identifier_completeness, mass_change
from dagster_project.core.held import count_in_doubt
from dagster_project.core.ledger import count_quarantined, ledger_duplicates
from dagster_project.core.locks import PushLockTimeout
from dagster_project.core.push import push_pending
from dagster_project.core.push_types import PushOptions, PushReport, PushStoppedError
from dagster_project.core.run_history import (
    last_successful_starts,
    read_run_record,
    recent_new_tokens,
    start_run_record,
    update_run_record,
)
from dagster_project.core.schema import StateSchemaError, ensure_state_schema
from dagster_project.core.scope import Scope, ScopeError, plan_scope
from dagster_project.core.staging import count_batch, purge_stale_batches, stage_new_tokens
from dagster_project.core.validation import ValidationReport, validate_staged
from dagster_project.resources import EsputnikResource, WarehouseResource
from dagster_project.settings import SyncSettings

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunIds:
    """The staging key shared by a run and its re-executions, and the run's own id."""

    batch_id: str
    run_id: str


@dataclass
class ExtractReport:
    scope: Scope
    coverage: dict[str, int]
    staged: int
    seconds: float
    batch_id: str
    unreadable_timestamps: int = 0  # rows no window can place (SQLite, reference schema)


@dataclass
class ValidateReport:
    validation: ValidationReport
    coverage: dict[str, object]
    completeness: Verdict
    seconds: float

    @property
    def already_pushed(self) -> int:
        return int(self.coverage["rows_extracted"]) - self.validation.rows_unpushed


@dataclass
class DiffReport:
    valid: int
    new: int
    held_back: int
    flood: Verdict
    seconds: float

    @property
    def already_pushed(self) -> int:
        return self.valid - self.new - self.held_back


@dataclass
class PushStepReport:
    push: PushReport
    duplicates: int
    in_doubt: int
    chunk_size: int
    max_quarantined: int
    stopped: str | None = None  # why the push stopped early, when it did
    extra: dict[str, object] = field(default_factory=dict)


def check_access(esputnik: EsputnikResource, log: Log) -> None:
    """A wrong key or app uuid fails the run in seconds, before the extract: an empty token list
    cannot store anything. No answer proves nothing either way: the push has its own rules."""
    client = esputnik.client()
    try:
        client.check_access()
    except EsputnikUnavailableError as exc:
        log(f"could not check the eSputnik credentials before the extract ({exc}); going on")
    except EsputnikError as exc:
        raise Failure(f"eSputnik refused the credentials: {exc}", allow_retries=False) from None
    finally:
        client.close()


def plan_run_scope(
    subscribed_from: str | None,
    subscribed_to: str | None,
    full_scan: bool,
    warehouse: WarehouseResource,
    app_uuid: str,
    settings: SyncSettings,
) -> Scope:
    """What this run reads (see ``plan_scope``); a bad date fails the run naming the field."""
    source, state = warehouse.warehouse_engine(), warehouse.state_engine()
    last_full_at, last_success_at = last_successful_starts(state, app_uuid)
    try:
        return plan_scope(
            subscribed_from,
            subscribed_to,
            full_scan,
            separate_state=not stages_unpushed_only(source, state),
            last_full_at=last_full_at,
            last_success_at=last_success_at,
            overlap=timedelta(hours=settings.change_overlap_hours),
            full_every=timedelta(days=settings.full_scan_every_days),
            now=utc_now(),
        )
    except ScopeError as exc:
        raise Failure(f"run config of subscriber_extract: {exc}") from None


def extract(
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    settings: SyncSettings,
    scope_request: tuple[str | None, str | None, bool],
    ids: RunIds,
    log: Log,
) -> ExtractReport:
    started = time.perf_counter()
    app_uuid = esputnik.app_uuid
    source, state = warehouse.warehouse_engine(), warehouse.state_engine()
    try:
        ensure_state_schema(state)
        scope = plan_run_scope(*scope_request, warehouse, app_uuid, settings)
        log(f"extracting {scope.describe()} from {warehouse.describe(source)} into {ids.batch_id}")
        purge_stale_batches(state, utc_now() - timedelta(days=settings.staging_retention_days))
        start_run_record(
            state,
            ids.batch_id,
            ids.run_id,
            app_uuid,
            scope.window,
            scope=scope.kind,
            changed_since=scope.changed_since,
        )
        check_access(esputnik, log)  # before the extract: a wrong key fails in seconds
        coverage, staged = extract_batch(
            source,
            state,
            warehouse.extract_query(),
            scope,
            ids.batch_id,
            app_uuid,
            warehouse.extract_chunk_rows,
            progress=lambda n: log(f"staged {n:,} rows"),
        )
        unreadable = 0 if warehouse.extract_sql_path else unreadable_timestamps(source)
    except StateSchemaError as exc:
        raise Failure(f"the state tables cannot be upgraded: {exc}") from None
    except (SQLAlchemyError, ExtractError) as exc:
        raise Failure(
            f"extract from {warehouse.describe(source)} failed: {str(exc).splitlines()[0]}. "
            "Check WAREHOUSE_URL, that the tables of sql/warehouse_schema.sql exist (make demo "
            "seeds a demo warehouse), and WAREHOUSE_EXTRACT_SQL if set."
        ) from None
    seconds = time.perf_counter() - started
    update_run_record(state, ids.batch_id, rows_staged=staged, extract_seconds=seconds, **coverage)
    log(
        f"{coverage['rows_extracted']:,} subscribers in scope; staged {staged:,} whose token is "
        f"not pushed yet, in {seconds:.1f}s"
    )
    if unreadable:
        log(
            f"{unreadable:,} rows of telegram_subscribers have a subscribed_at or "
            "status_changed_at that is not UTC text 'YYYY-MM-DD HH:MM:SS' (an epoch number, a 'T' "
            "or an offset): SQLite compares timestamps as text, so no run can place them. "
            "Rewrite them in that form."
        )
    return ExtractReport(scope, coverage, staged, seconds, ids.batch_id, unreadable)


def validate(
    warehouse: WarehouseResource,
    app_uuid: str,
    settings: SyncSettings,
    ids: RunIds,
    log: Log,
) -> ValidateReport:
    started = time.perf_counter()
    state = warehouse.state_engine()
    coverage = read_run_record(state, ids.batch_id)
    try:
        validation = validate_staged(
            state,
            ids.batch_id,
            app_uuid,
            ids.run_id,
            settings.default_region(),
            settings.validate_chunk_rows,
            log=log,
            recheck_ledger=not stages_unpushed_only(warehouse.warehouse_engine(), state),
        )
    except SpillError as exc:
        raise Failure(str(exc)) from None
    seconds = time.perf_counter() - started
    update_run_record(
        state,
        ids.batch_id,
        rows_valid=validation.rows_valid,
        rows_rejected=sum(validation.reject_counts.values()),
        identifiers_dropped=sum(validation.drop_counts.values()),
        validate_seconds=seconds,
    )
    completeness = identifier_completeness(
        coverage["rows_without_identifier"],
        coverage["active_rows"],
        settings.max_no_identifier_share,
    )
    report = ValidateReport(validation, coverage, completeness, seconds)
    log(validation_line(report))
    return report


def validation_line(report: ValidateReport) -> str:
    """The step's one log line: where the rows went and where the time went."""
    v = report.validation
    rejected = sum(v.reject_counts.values())
    reasons = ", ".join(f"{k}={n}" for k, n in v.reject_counts.items() if n) or "none"
    phases = ", ".join(f"{k} {s:.1f}s" for k, s in v.seconds.items())
    return (
        f"{int(report.coverage['rows_extracted']):,} rows, {report.already_pushed:,} with a token "
        f"already pushed, {v.rows_settled:,} refused before and unchanged since; of the other "
        f"{v.rows_validated:,}: {v.rows_valid:,} valid, {rejected:,} rejected ({reasons}), "
        f"{sum(v.drop_counts.values()):,} identifiers dropped; {report.seconds:.1f}s ({phases}, "
        f"waiting for the GX suite {v.gx_seconds:.1f}s)"
    )


def diff(
    warehouse: WarehouseResource,
    app_uuid: str,
    settings: SyncSettings,
    ids: RunIds,
    allow_mass_change: bool,
    log: Log,
) -> DiffReport:
    started = time.perf_counter()
    state = warehouse.state_engine()
    valid = count_batch(state, "esputnik_stage_valid", ids.batch_id)
    new = stage_new_tokens(state, ids.batch_id, app_uuid)
    held_back = count_quarantined(state, ids.batch_id, app_uuid)
    flood = mass_change(
        new,
        recent_new_tokens(state, app_uuid, ids.batch_id, settings.mass_change_lookback_runs),
        settings.mass_change_multiple,
        settings.mass_change_min_tokens,
        overridden=settings.allow_mass_change or allow_mass_change,
    )
    report = DiffReport(valid, new, held_back, flood, time.perf_counter() - started)
    update_run_record(
        state,
        ids.batch_id,
        tokens_already_pushed=report.already_pushed,
        tokens_new=new,
        tokens_quarantine_skipped=held_back,
        diff_seconds=report.seconds,
    )
    log(
        f"{valid:,} valid tokens: {report.already_pushed:,} already pushed, {held_back:,} "
        f"quarantined with unchanged identifiers, {new:,} new"
    )
    return report


def push(
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    settings: SyncSettings,
    ids: RunIds,
    log: Log,
) -> PushStepReport:
    state = warehouse.state_engine()
    options = PushOptions(
        chunk_size=esputnik.chunk_size,
        max_in_flight=esputnik.max_in_flight,
        requests_per_second=esputnik.requests_per_second,
        dry_run=settings.dry_run,
        lock_wait_seconds=settings.push_lock_wait_seconds,
        max_refused_share=settings.max_refused_share,
        refused_min_tokens=settings.refused_min_tokens,
        journal_dir=Path(settings.journal_dir) if settings.journal_dir else None,
    )
    client = esputnik.client()
    try:
        report = push_pending(state, client, ids.batch_id, ids.run_id, options, log=log)
    except PushStoppedError as exc:
        raise Failure(
            f"push stopped: {exc}",
            allow_retries=False,
            metadata={
                "tokens_pushed": exc.report.tokens_pushed,
                "tokens_resent": exc.report.tokens_resent,
                "tokens_in_doubt": exc.report.tokens_in_doubt,
            },
        ) from None
    except (EsputnikError, PushLockTimeout) as exc:
        raise Failure(
            f"push stopped: {exc}. Chunks accepted before this are in the ledger; "
            "the next run sends the rest.",
            allow_retries=False,
        ) from None
    finally:
        client.close()
    if report.dry_run:
        update_run_record(state, ids.batch_id, status="dry_run")
    else:
        update_run_record(state, ids.batch_id, status="succeeded", **report.run_counters())
    if report.requests_sent:
        busy = report.rate_limit_busy
        log(
            f"pushed {report.tokens_pushed:,} tokens in {report.requests_sent:,} requests over "
            f"{report.sending_seconds:.1f}s ({report.tokens_per_second:,.0f} tokens/s"
            + (f"; rate limit {busy:.0%} busy" if busy is not None else "")
            + ")"
        )
    return PushStepReport(
        push=report,
        duplicates=ledger_duplicates(state, esputnik.app_uuid, ids.batch_id),
        in_doubt=count_in_doubt(state, esputnik.app_uuid),
        chunk_size=esputnik.chunk_size,
        max_quarantined=settings.max_quarantined_tokens,
    )
