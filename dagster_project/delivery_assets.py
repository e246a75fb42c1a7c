"""Message statuses feed the ledger back, and the delivery picture per day.

eSputnik drops a token when a message to it fails with reason Forbidden (the user blocked the
bot). Marking that push ``removed_by_esputnik`` in the ledger lets the sync push the token again
once the subscriber is active after the removal, and only then.
"""

import time
from datetime import datetime, timedelta

import pandas as pd
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
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dagster_project.core.events import blocked_rate_jump, check_events, daily_delivery
from dagster_project.core.identifiers import redact_personal_data
from dagster_project.core.state import (
    append_frame,
    apply_message_events,
    db_timestamp,
    delivery_counts,
    ensure_state_schema,
    events_cursor,
    handled_event_keys,
    load_sql,
    replace_delivery_days,
    utc_now,
)
from dagster_project.reporting import counts_table, delivery_days_table, plain_value
from dagster_project.resources import EsputnikResource, SyncSettings, WarehouseResource

DELIVERY_GROUP = "esputnik_delivery"
BLOCKED_RATE_CHECK = "blocked_rate_jump"
EPOCH = datetime(1970, 1, 1)


@asset(
    group_name=DELIVERY_GROUP,
    kinds={"sql", "python"},
    description=(
        "New eSputnik message events (SENT / FAILED / CLICKED) from the warehouse table "
        "esputnik_message_events, applied once each: FAILED with reason Forbidden marks the "
        "token's push removed_by_esputnik in the ledger (history kept). Unknown statuses, "
        "unknown tokens and malformed rows are set aside with a reason."
    ),
)
def esputnik_message_events_ingested(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    started = time.perf_counter()
    source, state = warehouse.warehouse_engine(), warehouse.state_engine()
    app_uuid, run_id = esputnik.app_uuid, context.run.run_id
    ensure_state_schema(state)
    cursor = events_cursor(state, app_uuid)
    since = cursor - timedelta(hours=sync_settings.events_grace_hours) if cursor else EPOCH
    context.log.info(f"reading message events from {since:%Y-%m-%d %H:%M} (cursor {cursor})")
    try:
        with source.connect() as conn:
            query = text(load_sql("extract_message_events.sql"))
            raw = pd.read_sql(query, conn, params={"since": db_timestamp(source, since)})
    except SQLAlchemyError as exc:
        raise Failure(
            f"reading esputnik_message_events from {warehouse.describe(source)} failed: "
            f"{redact_personal_data(str(exc).splitlines()[0])}. Create the table with sql/message_events_schema.sql "
            "and land eSputnik's message statuses in it (see README)."
        ) from None
    checked = check_events(raw)
    handled = handled_event_keys(state, app_uuid, since)
    good = checked.good[~checked.good["event_key"].isin(handled)].drop_duplicates("event_key")
    bad = checked.bad[~checked.bad["event_key"].isin(handled)].drop_duplicates("event_key")
    with state.begin() as conn:
        append_frame(
            conn,
            "esputnik_message_events_rejected",
            bad.assign(app_uuid=app_uuid, run_id=run_id, rejected_at=utc_now()),
        )
    applied = apply_message_events(state, app_uuid, run_id, run_id, good)
    rejected = bad["rejection"].str.split(":").str[0].value_counts().to_dict()
    counts = {
        "events_read": len(raw),
        "events_new": len(good) + len(bad),
        "events_processed": applied["processed"],
        "events_rejected_malformed": int(rejected.get("malformed", 0)),
        "events_rejected_unknown_status": int(rejected.get("unknown_status", 0)),
        "events_rejected_unknown_token": applied["unknown_token"],
        "tokens_removed_by_esputnik": applied["tokens_removed"],
    }
    context.log.info(", ".join(f"{k}={v}" for k, v in counts.items()))
    return MaterializeResult(
        metadata={
            **counts,
            "dagster/row_count": applied["processed"],
            "ingest_seconds": round(time.perf_counter() - started, 3),
            "summary": MetadataValue.md(counts_table("Message events", counts)),
        }
    )


@asset(
    group_name=DELIVERY_GROUP,
    deps=[esputnik_message_events_ingested],
    kinds={"sql"},
    check_specs=[
        AssetCheckSpec(
            BLOCKED_RATE_CHECK,
            asset="esputnik_delivery_metrics",
            description=(
                "Warns when the latest day's blocked rate (FAILED/Forbidden per SENT) jumps above "
                "SYNC_BLOCKED_RATE_JUMP_MULTIPLE x its 7-day average."
            ),
        )
    ],
    description=(
        "Delivery per day from the processed message events: sent, failed, failed with "
        "Forbidden, clicked, click rate and blocked rate (table esputnik_delivery_daily)."
    ),
)
def esputnik_delivery_metrics(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    state = warehouse.state_engine()
    since = utc_now() - timedelta(days=sync_settings.delivery_metrics_days)
    daily = daily_delivery(delivery_counts(state, esputnik.app_uuid, since))
    if not daily.empty:
        replace_delivery_days(state, esputnik.app_uuid, daily)
    passed, description, check_metadata = blocked_rate_jump(
        daily, sync_settings.blocked_rate_jump_multiple, sync_settings.blocked_rate_floor
    )
    latest = daily.iloc[-1].to_dict() if not daily.empty else {}
    figures = {
        key: _figure(latest.get(key), rate=key.endswith("rate"))
        for key in ("sent", "failed", "failed_forbidden", "clicked", "click_rate", "blocked_rate")
    }
    return MaterializeResult(
        metadata={
            "day": str(latest.get("day", "")),
            **figures,
            "days": len(daily),
            "last_14_days": delivery_days_table(daily.tail(14)),
        },
        check_results=[
            AssetCheckResult(
                check_name=BLOCKED_RATE_CHECK,
                passed=passed,
                severity=AssetCheckSeverity.WARN,
                description=description,
                metadata=check_metadata,
            )
        ],
    )


def _figure(value: object, rate: bool) -> MetadataValue | int | float:
    """A day's figure as metadata: a rate without a denominator is null, not zero or an error."""
    value = plain_value(value)
    if rate:
        return MetadataValue.null() if value is None else float(value)
    return int(value or 0)


delivery_assets = [esputnik_message_events_ingested, esputnik_delivery_metrics]
