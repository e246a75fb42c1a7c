"""Failure alerts: a failed sync is recorded with its reason and announced.

The sensor posts ``{"text": ...}`` to ``SYNC_ALERT_WEBHOOK_URL`` when set (the payload a Slack
incoming webhook takes; most chat tools accept it), logs the alert either way, and marks the
run's row in ``esputnik_sync_runs`` as failed with the reason.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from dagster import (
    ConfigurableResource,
    DefaultSensorStatus,
    RunFailureSensorContext,
    run_failure_sensor,
)

from dagster_project.core.identifiers import redact_personal_data
from dagster_project.core.state import mark_run_failed
from dagster_project.resources import WarehouseResource, env_field


class AlertWebhookResource(ConfigurableResource):
    """Where failure alerts go: an incoming-webhook URL (Slack-compatible JSON)."""

    url: str | None = env_field("SYNC_ALERT_WEBHOOK_URL", None, description="incoming webhook")
    timeout_seconds: float = 10.0

    def send(self, text: str) -> bool:
        """Post the alert; a failure names the webhook's host only (its path is the secret)."""
        if not self.url:
            return False
        try:
            response = requests.post(self.url, json={"text": text}, timeout=self.timeout_seconds)
            response.raise_for_status()
        except requests.RequestException as exc:
            status = getattr(exc.response, "status_code", None)
            cause = f"HTTP {status}" if status else type(exc).__name__
            raise AlertDeliveryError(
                f"posting the alert to SYNC_ALERT_WEBHOOK_URL ({masked_url(self.url)}) failed: "
                f"{cause}"
            ) from None
        return True


class AlertDeliveryError(RuntimeError):
    """The webhook did not take the alert; the message holds no part of the secret URL."""


def masked_url(url: str) -> str:
    """Scheme and host of a URL, the rest hidden: a webhook URL's path and query are its key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/***"


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
    tags = run.tags
    window = f"{tags.get('dagster/asset_partition_range_start') or tags.get('dagster/partition')}"
    window += f"...{tags.get('dagster/asset_partition_range_end', '')}".rstrip(".")
    text = f"eSputnik token sync failed (run {run.run_id}, days {window}):\n{reason}"
    context.log.error(text)
    try:
        mark_run_failed(warehouse.state_engine(), run.root_run_id or run.run_id, reason)
    except Exception as exc:  # the alert matters more than the bookkeeping
        context.log.warning(f"could not record the failure in esputnik_sync_runs: {exc}")
    alerts.send(text)
