"""The sync as four assets: extract -> validate -> diff -> push.

Each step keeps its data in staging tables of the state database, keyed by the run's batch id
(the root run id, so a re-execution from failure picks up its parent's batch); only small
metadata passes through Dagster.
"""

import time
from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from sqlalchemy.exc import SQLAlchemyError

from dagster_project.core.buckets import SpillError
from dagster_project.core.esputnik import EsputnikError
from dagster_project.core.expectations import SUITE_NAME
from dagster_project.core.extract import ExtractError, extract_batch, stages_unpushed_only
from dagster_project.core.guards import Verdict, identifier_completeness, mass_change
from dagster_project.core.locks import PushLockTimeout
from dagster_project.core.push import PushOptions, push_pending
from dagster_project.core.state import (
    count_batch,
    count_quarantined,
    ensure_state_schema,
    ledger_duplicates,
    purge_stale_batches,
    read_run_record,
    recent_new_tokens,
    stage_new_tokens,
    start_run_record,
    update_run_record,
    utc_now,
)
from dagster_project.core.validation import validate_staged
from dagster_project.partitions import single_run_backfill, subscribed_date_partitions
from dagster_project.reporting import (
    counts_table,
    payload_sample,
    quarantine_sample,
    rejects_sample,
)
from dagster_project.resources import EsputnikResource, SyncSettings, WarehouseResource

GROUP = "esputnik_token_sync"
PUSH_POOL = "esputnik_push"
PAYLOAD_CHECK = "payload_contract"
COMPLETENESS_CHECK = "identifier_completeness"
MASS_CHANGE_CHECK = "mass_change_guard"
LEDGER_CHECK = "ledger_no_duplicates"
QUARANTINE_CHECK = "push_quarantine"
ALLOW_MASS_CHANGE_TAG = "esputnik_sync/allow_mass_change"

sync_asset = dict(
    group_name=GROUP,
    partitions_def=subscribed_date_partitions,
    backfill_policy=single_run_backfill,
    kinds={"sql", "python"},
)


def batch_id_of(context: AssetExecutionContext) -> str:
    """Staging key shared by every step of a run and by its re-executions."""
    return context.run.root_run_id or context.run.run_id


@asset(
    **sync_asset,
    description=(
        "Bot subscribers whose subscribed_at (UTC) falls in the partition range, LEFT JOINed to "
        "CRM contacts (sql/extract_subscribers.sql), copied into esputnik_stage_extract."
    ),
)
def subscriber_extract(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    started = time.perf_counter()
    window = context.partition_time_window
    batch_id = batch_id_of(context)
    source, state = warehouse.warehouse_engine(), warehouse.state_engine()
    context.log.info(
        f"extracting subscribers {window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d} (exclusive) "
        f"from {warehouse.describe(source)} into batch {batch_id}"
    )
    try:
        ensure_state_schema(state)
        purge_stale_batches(state, utc_now() - timedelta(days=sync_settings.staging_retention_days))
        start_run_record(state, batch_id, context.run.run_id, esputnik.app_uuid, window)
        coverage, staged = extract_batch(
            source,
            state,
            warehouse.extract_query(),
            window,
            batch_id,
            esputnik.app_uuid,
            warehouse.extract_chunk_rows,
            progress=lambda n: context.log.info(f"staged {n:,} rows"),
        )
    except (SQLAlchemyError, ExtractError) as exc:
        raise Failure(
            f"extract from {warehouse.describe(source)} failed: {str(exc).splitlines()[0]}. "
            "Check WAREHOUSE_URL, that the tables of sql/warehouse_schema.sql exist (make demo "
            "seeds a demo warehouse), and WAREHOUSE_EXTRACT_SQL if set."
        ) from None
    seconds = time.perf_counter() - started
    rows = coverage["rows_extracted"]
    update_run_record(state, batch_id, rows_staged=staged, extract_seconds=seconds, **coverage)
    context.log.info(
        f"{rows:,} rows in range; staged {staged:,} whose token is not pushed yet, "
        f"in {seconds:.1f}s"
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "rows_extracted": rows,
            "rows_staged": staged,
            "active_rows": coverage["active_rows"],
            "extract_seconds": round(seconds, 3),
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "batch_id": batch_id,
        }
    )


@asset(
    **sync_asset,
    deps=[subscriber_extract],
    check_specs=[
        AssetCheckSpec(
            PAYLOAD_CHECK,
            asset="validated_subscribers",
            blocking=True,
            description=(
                f"Great Expectations suite {SUITE_NAME!r} over the rows to send: tokens present "
                "and unique, at least one identifier, identifier formats. Blocks the push."
            ),
        ),
        AssetCheckSpec(
            COMPLETENESS_CHECK,
            asset="validated_subscribers",
            blocking=True,
            description=(
                "Share of the range's active subscribers with no identifier at all (no CRM "
                "contact, no shared phone) stays under SYNC_MAX_NO_IDENTIFIER_SHARE; a broken "
                "CRM join blocks the push."
            ),
        ),
    ],
    description=(
        "One row per token that may be sent: rows whose token is already live in the ledger are "
        "skipped (set-based, in SQL); the rest get identifiers normalized (phone to "
        "international digits, email lowercased and validated), blocked and unusable rows "
        "refused with a reason (table esputnik_sync_rejects), then a Great Expectations suite."
    ),
)
def validated_subscribers(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    started = time.perf_counter()
    state, batch_id = warehouse.state_engine(), batch_id_of(context)
    coverage = read_run_record(state, batch_id)
    extracted = int(coverage["rows_extracted"])
    try:
        report = validate_staged(
            state,
            batch_id,
            esputnik.app_uuid,
            context.run.run_id,
            sync_settings.default_region(),
            sync_settings.validate_chunk_rows,
            log=context.log.info,
            recheck_ledger=not stages_unpushed_only(warehouse.warehouse_engine(), state),
        )
    except SpillError as exc:
        raise Failure(str(exc)) from None
    seconds = time.perf_counter() - started
    already_pushed = extracted - report.rows_unpushed
    reject_counts, drop_counts = dict(report.reject_counts), dict(report.drop_counts)
    rejected, dropped = sum(reject_counts.values()), sum(drop_counts.values())
    update_run_record(
        state,
        batch_id,
        rows_valid=report.rows_valid,
        rows_rejected=rejected,
        identifiers_dropped=dropped,
        validate_seconds=seconds,
    )
    context.log.info(
        f"{extracted:,} rows, {already_pushed:,} with a token already pushed, "
        f"{report.rows_settled:,} refused before and unchanged since; of the other "
        f"{report.rows_validated:,}: {report.rows_valid:,} valid, {rejected:,} rejected "
        f"({', '.join(f'{k}={v}' for k, v in reject_counts.items() if v) or 'none'}), "
        f"{dropped:,} identifiers dropped; {seconds:.1f}s ("
        + ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
        + f", waiting for the GX suite {report.gx_seconds:.1f}s)"
    )
    suite = report.suite
    failed = ", ".join(f"{e.name}({e.column}): {e.unexpected_count}" for e in suite.failed)
    completeness = identifier_completeness(
        coverage["rows_without_identifier"],
        coverage["active_rows"],
        sync_settings.max_no_identifier_share,
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": report.rows_valid,
            "rows_extracted": extracted,
            "rows_already_pushed": already_pushed,
            "rows_settled": report.rows_settled,
            "rows_validated": report.rows_validated,
            "rows_valid": report.rows_valid,
            "rows_rejected": rejected,
            "identifiers_dropped": dropped,
            **{f"rejected_{k}": v for k, v in reject_counts.items()},
            **{f"dropped_{k}": v for k, v in drop_counts.items()},
            "validate_seconds": round(seconds, 3),
            "gx_seconds": round(report.gx_seconds, 3),
            "phone_engine": report.phone_engine or "none needed",
            "rejects_sample": rejects_sample(report.rejects_sample),
            "summary": MetadataValue.md(
                counts_table("Rejected rows by reason", reject_counts)
                + "\n\n"
                + counts_table("Identifiers dropped from sent rows", drop_counts)
            ),
        },
        check_results=[
            AssetCheckResult(
                check_name=PAYLOAD_CHECK,
                passed=suite.success,
                severity=AssetCheckSeverity.ERROR,
                description=None if suite.success else f"failed expectations: {failed}",
                metadata={
                    "expectations_evaluated": len(suite.expectations),
                    "expectations_failed": len(suite.failed),
                    "rows_checked": report.rows_valid,
                    "chunks": report.chunks,
                },
            ),
            verdict_result(
                COMPLETENESS_CHECK,
                completeness,
                active_rows=coverage["active_rows"],
                share_without_crm_link=round(
                    coverage["rows_without_crm_link"] / max(coverage["active_rows"], 1), 4
                ),
            ),
        ],
    )


@asset(
    **sync_asset,
    deps=[validated_subscribers],
    check_specs=[
        AssetCheckSpec(
            MASS_CHANGE_CHECK,
            asset="new_esputnik_tokens",
            blocking=True,
            description=(
                "New tokens stay under SYNC_MASS_CHANGE_MULTIPLE times the average of recent runs "
                "(never below SYNC_MASS_CHANGE_MIN_TOKENS): a replayed table must not flood "
                f"eSputnik. Override with SYNC_ALLOW_MASS_CHANGE=true or run tag "
                f"{ALLOW_MASS_CHANGE_TAG}=true."
            ),
        )
    ],
    description=(
        "Valid tokens the ledger (esputnik_token_ledger) does not hold for this app: a set-based "
        "anti-join in the state database, staged in esputnik_stage_new."
    ),
)
def new_esputnik_tokens(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    started = time.perf_counter()
    state, batch_id = warehouse.state_engine(), batch_id_of(context)
    valid = count_batch(state, "esputnik_stage_valid", batch_id)
    new = stage_new_tokens(state, batch_id, esputnik.app_uuid)
    held_back = count_quarantined(state, batch_id, esputnik.app_uuid)
    already = valid - new - held_back
    seconds = time.perf_counter() - started
    update_run_record(
        state,
        batch_id,
        tokens_already_pushed=already,
        tokens_new=new,
        tokens_quarantine_skipped=held_back,
        diff_seconds=seconds,
    )
    context.log.info(
        f"{valid:,} valid tokens: {already:,} already pushed, {held_back:,} quarantined "
        f"with unchanged identifiers, {new:,} new"
    )
    flood = mass_change(
        new,
        recent_new_tokens(
            state, esputnik.app_uuid, batch_id, sync_settings.mass_change_lookback_runs
        ),
        sync_settings.mass_change_multiple,
        sync_settings.mass_change_min_tokens,
        overridden=sync_settings.allow_mass_change
        or context.run.tags.get(ALLOW_MASS_CHANGE_TAG, "").lower() == "true",
    )
    return MaterializeResult(
        check_results=[verdict_result(MASS_CHANGE_CHECK, flood)],
        metadata={
            "dagster/row_count": new,
            "tokens_valid": valid,
            "tokens_already_pushed": already,
            "tokens_quarantine_skipped": held_back,
            "tokens_new": new,
            "diff_seconds": round(seconds, 3),
        },
    )


@asset(
    **sync_asset,
    deps=[new_esputnik_tokens],
    pool=PUSH_POOL,
    check_specs=[
        AssetCheckSpec(
            LEDGER_CHECK,
            asset="esputnik_pushed_tokens",
            description=(
                "The ledger holds none of the tokens this run set out to send twice (live, for "
                "the app): proof that no token was sent twice."
            ),
        ),
        AssetCheckSpec(
            QUARANTINE_CHECK,
            asset="esputnik_pushed_tokens",
            description=(
                "Tokens eSputnik refused (quarantined) in this run stay under "
                "SYNC_MAX_QUARANTINED_TOKENS."
            ),
        ),
    ],
    description=(
        "New tokens posted to eSputnik (POST /v1/apps/{app_uuid}/tokens) in chunks of "
        "ESPUTNIK_CHUNK_SIZE; each accepted chunk is written to the ledger in its own "
        "transaction, so a rerun never resends an accepted chunk. A chunk refused with 400 is "
        "split until the offending tokens are alone; those are quarantined with the reason. "
        "Runs under a push lock (Dagster pool + database lock): concurrent runs never send the "
        "same token twice. With SYNC_DRY_RUN it only reports what it would send."
    ),
)
def esputnik_pushed_tokens(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    state, batch_id = warehouse.state_engine(), batch_id_of(context)
    options = PushOptions(
        chunk_size=esputnik.chunk_size,
        max_in_flight=esputnik.max_in_flight,
        requests_per_second=esputnik.requests_per_second,
        dry_run=sync_settings.dry_run,
        lock_wait_seconds=sync_settings.push_lock_wait_seconds,
    )
    client = esputnik.client()
    try:
        report = push_pending(
            state, client, batch_id, context.run.run_id, options, log=context.log.info
        )
    except (EsputnikError, PushLockTimeout) as exc:
        raise Failure(
            f"push stopped: {exc}. Chunks accepted before this are in the ledger; "
            "the next run sends the rest.",
            allow_retries=False,
        ) from None
    finally:
        client.close()
    if not report.dry_run:
        update_run_record(
            state,
            batch_id,
            status="succeeded",
            tokens_pushed=report.tokens_pushed,
            tokens_quarantined=report.tokens_quarantined,
            chunks_pushed=report.chunks_pushed,
            requests_sent=report.requests_sent,
            push_seconds=report.seconds,
            sending_seconds=report.sending_seconds,
            requests_per_second_limit=report.requests_per_second_limit,
        )
    else:
        update_run_record(state, batch_id, status="dry_run")
    if report.requests_sent:
        busy = report.rate_limit_busy
        context.log.info(
            f"pushed {report.tokens_pushed:,} tokens in {report.requests_sent:,} requests over "
            f"{report.sending_seconds:.1f}s ({report.tokens_per_second:,.0f} tokens/s"
            + (f"; rate limit {busy:.0%} busy" if busy is not None else "")
            + ")"
        )
    duplicates = ledger_duplicates(state, esputnik.app_uuid, batch_id)
    quarantined_ok = report.tokens_quarantined <= sync_settings.max_quarantined_tokens
    if report.tokens_quarantined:
        context.log.warning(
            f"{report.tokens_quarantined} tokens refused by eSputnik and quarantined "
            "(table esputnik_token_quarantine); they are retried once their identifiers change"
        )
    return MaterializeResult(
        metadata={
            "dagster/row_count": report.tokens_pushed,
            "dry_run": report.dry_run,
            "tokens_pending": report.tokens_pending,
            "tokens_pushed": report.tokens_pushed,
            "tokens_quarantined": report.tokens_quarantined,
            "chunks_pushed": report.chunks_pushed,
            "requests_sent": report.requests_sent,
            "push_seconds": round(report.seconds, 3),
            "tokens_per_second": round(report.tokens_per_second, 1),
            "sending_seconds": round(report.sending_seconds, 3),
            **(
                {"rate_limit_busy": round(report.rate_limit_busy, 3)}
                if report.rate_limit_busy is not None
                else {}
            ),
            "chunk_size": esputnik.chunk_size,
            "quarantined_sample": quarantine_sample(report.quarantined),
            **({"would_send_sample": payload_sample(report.would_send)} if report.dry_run else {}),
        },
        check_results=[
            AssetCheckResult(
                check_name=LEDGER_CHECK,
                passed=duplicates == 0,
                severity=AssetCheckSeverity.ERROR,
                description=f"{duplicates} live tokens recorded more than once",
                metadata={"duplicated_tokens": duplicates},
            ),
            AssetCheckResult(
                check_name=QUARANTINE_CHECK,
                passed=quarantined_ok,
                severity=AssetCheckSeverity.ERROR,
                description=(
                    f"{report.tokens_quarantined} tokens quarantined this run "
                    f"(limit {sync_settings.max_quarantined_tokens}); see esputnik_token_quarantine"
                ),
                metadata={
                    "tokens_quarantined": report.tokens_quarantined,
                    "limit": sync_settings.max_quarantined_tokens,
                },
            ),
        ],
    )


def verdict_result(check_name: str, verdict: Verdict, **extra: float) -> AssetCheckResult:
    """A guard's verdict as an ERROR-severity check result (blocking where declared so)."""
    return AssetCheckResult(
        check_name=check_name,
        passed=verdict.passed,
        severity=AssetCheckSeverity.ERROR,
        description=verdict.description,
        metadata={**verdict.metadata, **extra},
    )


sync_assets = [
    subscriber_extract,
    validated_subscribers,
    new_esputnik_tokens,
    esputnik_pushed_tokens,
]
