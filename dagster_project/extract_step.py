"""The extract step: plan what the run reads, check the eSputnik credentials, stage the
warehouse rows and count them (see ``steps`` for what every step shares)."""

from __future__ import annotations

import time
from datetime import timedelta

from dagster import Failure
from sqlalchemy.exc import SQLAlchemyError

from dagster_project.core.db import utc_now
from dagster_project.core.esputnik import EsputnikError, EsputnikUnavailableError
from dagster_project.core.extract import ExtractError, extract_batch, unreadable_timestamps
from dagster_project.core.run_history import (
    last_successful_starts,
    start_run_record,
    update_run_record,
)
from dagster_project.core.schema import StateSchemaError, ensure_state_schema
from dagster_project.core.scope import Scope, ScopeError, plan_scope
from dagster_project.core.staging import purge_stale_batches
from dagster_project.resources import EsputnikResource
from dagster_project.step_reports import ExtractReport
from dagster_project.steps import Log, Step


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
    step: Step, subscribed_from: str | None, subscribed_to: str | None, full_scan: bool
) -> Scope:
    """What this run reads (see ``plan_scope``); a bad date fails the run naming the field."""
    settings = step.settings
    last_full_at, last_success_at = last_successful_starts(step.state, step.app_uuid)
    try:
        return plan_scope(
            subscribed_from,
            subscribed_to,
            full_scan,
            separate_state=not step.stages_unpushed_only,
            last_full_at=last_full_at,
            last_success_at=last_success_at,
            overlap=timedelta(hours=settings.change_overlap_hours),
            full_every=timedelta(days=settings.full_scan_every_days),
            now=utc_now(),
        )
    except ScopeError as exc:
        raise Failure(f"run config of subscriber_extract: {exc}") from None


def extract(step: Step, scope_request: tuple[str | None, str | None, bool]) -> ExtractReport:
    started = time.perf_counter()
    warehouse, ids, log = step.warehouse, step.ids, step.log
    source, state = warehouse.warehouse_engine(), step.state
    try:
        ensure_state_schema(state)
        scope = plan_run_scope(step, *scope_request)
        log(f"extracting {scope.describe()} from {warehouse.describe(source)} into {ids.batch_id}")
        retention = timedelta(days=step.settings.staging_retention_days)
        purge_stale_batches(state, utc_now() - retention)
        start_run_record(
            state,
            ids.batch_id,
            ids.run_id,
            step.app_uuid,
            scope.window,
            scope=scope.kind,
            changed_since=scope.changed_since,
        )
        check_access(step.esputnik, log)  # before the extract: a wrong key fails in seconds
        coverage, staged = extract_batch(
            source,
            state,
            warehouse.extract_query(),
            scope,
            ids.batch_id,
            step.app_uuid,
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
