"""Each sync step's work, between the resources and the pure core: run the core, keep the run's
record in ``esputnik_sync_runs`` up to date, and turn what can go wrong into a ``Failure`` that
names the setting or table involved. The assets call one function each (the extract's is in
extract_step.py); reporting.py turns the returned reports (step_reports.py) into metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dagster import Failure
from sqlalchemy import Engine

from dagster_project.core.buckets import SpillError
from dagster_project.core.esputnik import EsputnikError
from dagster_project.core.extract import (
    stages_unpushed_only,
)
from dagster_project.core.guards import identifier_completeness, mass_change
from dagster_project.core.held import count_in_doubt
from dagster_project.core.ledger import count_quarantined, ledger_duplicates, stage_new_tokens
from dagster_project.core.locks import PushLockTimeout
from dagster_project.core.push import push_pending
from dagster_project.core.push_types import PushStoppedError
from dagster_project.core.run_history import (
    read_run_record,
    recent_new_tokens,
    update_run_record,
)
from dagster_project.core.staging import count_batch
from dagster_project.core.validation import validate_staged
from dagster_project.resources import EsputnikResource, WarehouseResource
from dagster_project.settings import SyncSettings
from dagster_project.step_reports import DiffReport, PushStepReport, ValidateReport

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunIds:
    """The staging key shared by a run and its re-executions, and the run's own id."""

    batch_id: str
    run_id: str


@dataclass(frozen=True)
class Step:
    """What every step works with: the resources, the rules, the run's ids and its log."""

    warehouse: WarehouseResource
    esputnik: EsputnikResource
    settings: SyncSettings
    ids: RunIds
    log: Log

    @property
    def state(self) -> Engine:
        return self.warehouse.state_engine()

    @property
    def app_uuid(self) -> str:
        return self.esputnik.app_uuid

    @property
    def stages_unpushed_only(self) -> bool:
        """Whether the extract left pushed tokens out (see ``stages_unpushed_only``)."""
        return stages_unpushed_only(self.warehouse.warehouse_engine(), self.state)


def validate(step: Step) -> ValidateReport:
    started = time.perf_counter()
    state, ids, settings = step.state, step.ids, step.settings
    coverage = read_run_record(state, ids.batch_id)
    try:
        validation = validate_staged(
            state,
            ids.batch_id,
            step.app_uuid,
            ids.run_id,
            settings.default_region(),
            settings.validate_chunk_rows,
            log=step.log,
            recheck_ledger=not step.stages_unpushed_only,
            raw_bounds=settings.raw_bounds(),
        )
    except SpillError as exc:
        raise Failure(str(exc)) from None
    seconds = time.perf_counter() - started
    update_run_record(
        state,
        ids.batch_id,
        rows_valid=validation.rows["valid"],
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
    step.log(report.log_line())
    return report


def diff(step: Step, allow_mass_change: bool) -> DiffReport:
    started = time.perf_counter()
    state, batch_id, app_uuid, settings = (
        step.state,
        step.ids.batch_id,
        step.app_uuid,
        step.settings,
    )
    valid = count_batch(state, "esputnik_stage_valid", batch_id)
    new = stage_new_tokens(state, batch_id, app_uuid)
    held_back = count_quarantined(state, batch_id, app_uuid)
    flood = mass_change(
        new,
        recent_new_tokens(state, app_uuid, batch_id, settings.mass_change_lookback_runs),
        settings.mass_change_multiple,
        settings.mass_change_min_tokens,
        overridden=settings.allow_mass_change or allow_mass_change,
    )
    report = DiffReport(valid, new, held_back, flood, time.perf_counter() - started)
    update_run_record(
        state,
        batch_id,
        tokens_already_pushed=report.already_pushed,
        tokens_new=new,
        tokens_quarantine_skipped=held_back,
        diff_seconds=report.seconds,
    )
    step.log(
        f"{valid:,} valid tokens: {report.already_pushed:,} already pushed, {held_back:,} "
        f"quarantined with unchanged identifiers, {new:,} new"
    )
    return report


def push(step: Step) -> PushStepReport:
    state, ids, esputnik, log = step.state, step.ids, step.esputnik, step.log
    client = esputnik.client()
    try:
        report = push_pending(
            state, client, ids.batch_id, ids.run_id, esputnik.push_options(step.settings), log=log
        )
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
        duplicates=ledger_duplicates(state, step.app_uuid, ids.batch_id),
        in_doubt=count_in_doubt(state, step.app_uuid),
        chunk_size=esputnik.chunk_size,
        max_quarantined=step.settings.max_quarantined_tokens,
    )
