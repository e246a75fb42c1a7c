"""Message statuses feed the ledger back, and the delivery picture per day.

eSputnik drops a token when a message to it fails with reason Forbidden (the user blocked the
bot). Marking that push ``removed_by_esputnik`` in the ledger lets the sync push the token again
once the subscriber is active after the removal, and only then.
"""

import time
from collections import Counter
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
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from dagster_project.core.db import utc_now
from dagster_project.core.event_source import EventSource
from dagster_project.core.event_store import (
    EventsIngest,
    delivery_counts,
    events_cursor,
    last_events_ingest,
    purge_expired,
    record_events_ingest,
    replace_delivery_days,
)
from dagster_project.core.events import (
    blocked_rate_jump,
    check_events,
    daily_delivery,
    forget_keys_before,
)
from dagster_project.core.ingest import handled_event_keys, ingest_checked_events
from dagster_project.core.masking import redact_personal_data
from dagster_project.core.schema import ensure_state_schema
from dagster_project.metadata_tables import counts_table, delivery_days_table, plain_value
from dagster_project.resources import AlertWebhookResource, EsputnikResource, WarehouseResource
from dagster_project.settings import SyncSettings
from dagster_project.sources import esputnik_message_events

DELIVERY_GROUP = "esputnik_delivery"
INGEST_CHECK = "message_status_ingest"
BLOCKED_RATE_CHECK = "blocked_rate_jump"
EPOCH = datetime(1970, 1, 1)


@asset(
    group_name=DELIVERY_GROUP,
    kinds={"sql", "python"},
    deps=[esputnik_message_events],
    check_specs=[
        AssetCheckSpec(
            INGEST_CHECK,
            asset="esputnik_message_events_ingested",
            description=(
                "The message statuses were read and applied. When they could not be, the sync "
                "after this still runs on the ledger as it stands, and this check fails with "
                "the reason (also logged and sent to SYNC_ALERT_WEBHOOK_URL)."
            ),
        )
    ],
    description=(
        "New eSputnik message events (SENT / FAILED / CLICKED) from the warehouse table "
        "esputnik_message_events (only the app's rows when it has an app_uuid column), read in "
        "chunks and applied once each: FAILED with reason Forbidden marks the token's push "
        "removed_by_esputnik in the ledger (history kept). Unknown statuses, unknown tokens, "
        "future-dated and malformed rows are set aside with a reason; rows that landed below "
        "the read window are counted. Expired rejects, events and quarantine entries are purged. Runs before the sync."
    ),
)
def esputnik_message_events_ingested(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
    alerts: AlertWebhookResource,
) -> MaterializeResult:
    """A failed ingest must not cost the night's sync: it is reported, and the sync goes on."""
    try:
        result = ingest_message_events(context, warehouse, esputnik, sync_settings)
    except Exception as exc:
        message = exc.description if isinstance(exc, Failure) else str(exc)
        reason = (message or "").strip().splitlines()[0] if message else type(exc).__name__
        text = (
            f"eSputnik message-status ingest failed (run {context.run.run_id}): {reason}. "
            "The sync runs on the ledger as it stands; removals reported since the last ingest "
            "are applied by the next one."
        )
        context.log.error(text)
        try:
            alerts.send(text)
        except Exception as send_error:  # the sync matters more than the alert
            context.log.warning(f"could not send the alert: {type(send_error).__name__}")
        return MaterializeResult(
            metadata={"ingest_failed": True},
            check_results=[
                AssetCheckResult(
                    check_name=INGEST_CHECK,
                    passed=False,
                    severity=AssetCheckSeverity.ERROR,
                    description=reason,
                )
            ],
        )
    return MaterializeResult(
        metadata={"ingest_failed": False, **result},
        check_results=[AssetCheckResult(check_name=INGEST_CHECK, passed=True)],
    )


def ingest_message_events(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> dict[str, object]:
    """Read the new message events and apply them; the counts, as metadata."""
    started = time.perf_counter()
    source, state = warehouse.warehouse_engine(), warehouse.state_engine()
    app_uuid, run_id, now = esputnik.app_uuid, context.run.run_id, utc_now()
    grace = timedelta(hours=sync_settings.events_grace_hours)
    latest = now + timedelta(minutes=sync_settings.events_future_tolerance_minutes)
    ensure_state_schema(state)
    # The previous ingest's point, so nothing between two ingests goes unread; the first one
    # (or the first since an upgrade) starts from the handled cursor.
    previous = last_events_ingest(state, app_uuid)
    since = previous.next_from if previous else _read_from(state, app_uuid, latest, grace)
    purged = purge_expired(
        state,
        app_uuid,
        now,
        rejects_days=sync_settings.rejects_retention_days,
        events_days=sync_settings.events_retention_days,
        quarantine_days=sync_settings.quarantine_retention_days,
        keep_events_from=since,
    )
    context.log.info(f"reading message events from {since:%Y-%m-%d %H:%M}; purged {purged}")
    try:
        events = EventSource.open(source, app_uuid)
        late = events.count_before(since) - previous.rows_before_next_from if previous else 0
        undated = events.count_undated()
    except (SQLAlchemyError, pd.errors.DatabaseError) as exc:
        raise Failure(
            f"reading esputnik_message_events from {warehouse.describe(source)} failed: "
            f"{redact_personal_data(str(exc).splitlines()[0])}. Create the table with "
            "sql/message_events_schema.sql and land eSputnik's message statuses in it (see README)."
        ) from None
    handled = handled_event_keys(state, app_uuid, since)
    counts: Counter[str] = Counter()
    read_undated = previous is None or undated != previous.undated_rows
    for chunk in events.chunks(since, sync_settings.events_chunk_rows, read_undated):
        checked = check_events(chunk, latest)
        counts["events_read"] += len(chunk)
        counts.update(ingest_checked_events(state, app_uuid, run_id, checked, handled))
        handled = forget_keys_before(handled, checked.keys())
    next_from = _read_from(state, app_uuid, latest, grace)
    ingest = EventsIngest(next_from, events.count_before(next_from), undated)
    record_events_ingest(state, app_uuid, run_id, ingest, now)
    if late > 0:
        context.log.warning(
            f"{late} message events landed dated before {since:%Y-%m-%d %H:%M}, "
            "below the read window, and were not applied: raise SYNC_EVENTS_GRACE_HOURS if "
            "eSputnik's statuses land that late"
        )
    counts.update(
        events_late_unread=max(late, 0),
        events_per_app=int(events.per_app),
        **{f"purged_{table}": rows for table, rows in purged.items()},
    )
    figures = {key: int(counts[key]) for key in EVENT_FIGURES}
    context.log.info(", ".join(f"{k}={v}" for k, v in figures.items()))
    return {
        **figures,
        "dagster/row_count": figures["events_processed"],
        "ingest_seconds": round(time.perf_counter() - started, 3),
        "summary": MetadataValue.md(counts_table("Message events", figures)),
    }


EVENT_FIGURES = (
    "events_read",
    "events_new",
    "events_processed",
    "events_rejected_malformed",
    "events_rejected_unknown_status",
    "events_rejected_future",
    "events_rejected_unknown_token",
    "events_late_unread",
    "tokens_removed_by_esputnik",
    "events_per_app",
    "purged_esputnik_sync_rejects",
    "purged_esputnik_message_events_processed",
    "purged_esputnik_message_events_rejected",
    "purged_esputnik_token_quarantine",
)


def _read_from(state: Engine, app_uuid: str, latest: datetime, grace: timedelta) -> datetime:
    """The handled cursor minus the grace period for late arrivals, or the beginning."""
    cursor = events_cursor(state, app_uuid, latest)
    return cursor - grace if cursor else EPOCH


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
