"""The one nightly schedule: message statuses, then the sync over every subscriber.

It requests a run with a run key per tick, so a tick evaluated twice launches one run. It ships
STOPPED: turning on a job that writes to a production API is a decision for whoever deploys it
(Dagster UI -> Automation, or ``dagster schedule start``).
"""

from __future__ import annotations

import os
import zoneinfo

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)
from dagster._utils.schedules import is_valid_cron_string

from dagster_project.env import SettingError
from dagster_project.jobs import esputnik_sync_job

DEFAULT_CRON = "0 2 * * *"


def _cron(env: dict[str, str]) -> str:
    cron = (env.get("SYNC_NIGHTLY_CRON") or DEFAULT_CRON).strip()
    if not is_valid_cron_string(cron):
        raise SettingError(f"SYNC_NIGHTLY_CRON={cron!r} is not a cron expression")
    return cron


def _timezone(env: dict[str, str]) -> str:
    timezone = (env.get("SYNC_SCHEDULE_TIMEZONE") or "UTC").strip()
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"SYNC_SCHEDULE_TIMEZONE={timezone!r} is not a time zone") from None
    return timezone


def build_schedules(env: dict[str, str] | None = None) -> list[ScheduleDefinition]:
    """The nightly schedule, timed by SYNC_NIGHTLY_CRON in SYNC_SCHEDULE_TIMEZONE (a cron
    expression is part of a schedule's definition, so these two are read when the code location
    loads; a bad value names the variable)."""
    env = dict(os.environ if env is None else env)

    @schedule(
        name="esputnik_sync_nightly",
        job=esputnik_sync_job,
        cron_schedule=_cron(env),
        execution_timezone=_timezone(env),
        default_status=DefaultScheduleStatus.STOPPED,
        description=(
            "Message statuses into the ledger, then every subscriber reconciled with it: late "
            "rows, late CRM links, new identifiers and re-subscriptions are pushed the same "
            "night; only tokens missing from the ledger are sent."
        ),
    )
    def nightly(context: ScheduleEvaluationContext) -> RunRequest:
        tick = context.scheduled_execution_time
        return RunRequest(
            run_key=f"nightly@{tick.isoformat()}", tags={"esputnik_sync/trigger": "nightly"}
        )

    return [nightly]
