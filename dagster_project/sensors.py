"""Alerts: a failed sync, and a night with no sync at all, are announced.

Both sensors post ``{"text": ...}`` to ``SYNC_ALERT_WEBHOOK_URL`` when set (the payload a Slack
incoming webhook takes; most chat tools accept it) and log the alert either way. The failure
sensor also marks the run's row in ``esputnik_sync_runs`` as failed with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from dagster_project.core.masking import redact_personal_data
from dagster_project.core.run_history import mark_run_failed
from dagster_project.freshness import FRESHNESS_HOURS
from dagster_project.resources import AlertWebhookResource, WarehouseResource


def failure_reason(context: RunFailureSensorContext) -> str:
    """The failed steps' own messages, which name the setting or row involved; personal data
    quoted in them (emails, phones, raw bytes) is masked before it is stored or posted."""
    reasons = [
        f"{event.step_key}: {event.event_specific_data.error.message.strip()}"
        for event in context.get_step_failure_events()
        if event.event_specific_data and event.event_specific_data.error
    ]
    reason = "\n".join(reasons) or context.failure_event.message or "unknown reason"
    return redact_personal_data(reason)


# No monitored_jobs: every job of this code location, including the implicit asset job that
# UI materializations and `dagster asset materialize` use.
@run_failure_sensor(
    name="esputnik_sync_failure_alert",
    default_status=DefaultSensorStatus.RUNNING,
    description="Records and announces a failed eSputnik sync, with the reason.",
)
def sync_failure_alert(
    context: RunFailureSensorContext, warehouse: WarehouseResource, alerts: AlertWebhookResource
) -> None:
    run = context.dagster_run
    reason = failure_reason(context)
    text = f"eSputnik token sync failed (run {run.run_id}, job {run.job_name}):\n{reason}"
    context.log.error(text)
    try:
        mark_run_failed(warehouse.state_engine(), run.root_run_id or run.run_id, reason)
    except Exception as exc:  # the alert matters more than the bookkeeping
        context.log.warning(f"could not record the failure in esputnik_sync_runs: {exc}")
    alerts.send(text)


PUSHED_TOKENS = AssetKey("esputnik_pushed_tokens")


def stale_since(last_update: float | None, now: datetime) -> datetime | None:
    """When the pushed tokens went stale (their last update plus FRESHNESS_HOURS), or None
    while fresh or before the first sync (nothing is expected of a deployment yet to run)."""
    if last_update is None:
        return None
    deadline = datetime.fromtimestamp(last_update, UTC) + timedelta(hours=FRESHNESS_HOURS)
    return deadline if now >= deadline else None


@sensor(
    name="esputnik_sync_freshness_alert",
    minimum_interval_seconds=15 * 60,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        f"Announces, once, that esputnik_pushed_tokens has not been updated for "
        f"{FRESHNESS_HOURS} hours: a night that did not run at all (schedule off, daemon down), "
        "which no failure sensor sees."
    ),
)
def sync_freshness_alert(context: SensorEvaluationContext, alerts: AlertWebhookResource):
    event = context.instance.get_latest_materialization_event(PUSHED_TOKENS)
    last_update = event.timestamp if event else None
    stale = stale_since(last_update, datetime.now(UTC))
    if stale is None:
        return SkipReason("esputnik_pushed_tokens is fresh (or was never synced)")
    if context.cursor == str(last_update):
        return SkipReason("already announced; waiting for the next sync")
    updated = datetime.fromtimestamp(last_update, UTC)
    text = (
        f"eSputnik token sync did not run: esputnik_pushed_tokens was last updated "
        f"{updated:%Y-%m-%d %H:%M} UTC, over {FRESHNESS_HOURS} hours ago. Check that the "
        "esputnik_sync_nightly schedule is running and the Dagster daemon is up."
    )
    context.log.error(text)
    alerts.send(text)
    context.update_cursor(str(last_update))
    return SkipReason("announced")
