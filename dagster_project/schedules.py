"""Nightly lookback run and weekly full-range run.

Both request one run over a partition range (the assets' single-run backfill policy), with a
run key per tick so a tick evaluated twice launches one run. They ship STOPPED: turning on a
job that writes to a production API is a decision for whoever deploys it (Dagster UI →
Automation, or ``dagster schedule start``).
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from dagster_project.jobs import esputnik_delivery_job, esputnik_sync_job
from dagster_project.partitions import subscribed_date_partitions

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def lookback_range(tick: datetime, lookback_days: int, first_day: date) -> tuple[str, str]:
    """Partition keys covering the ``lookback_days`` days up to and including the tick's day."""
    today = tick.date()
    start = max(first_day, today - timedelta(days=lookback_days - 1))
    return start.isoformat(), today.isoformat()


def range_request(kind: str, start: str, end: str, tick: datetime) -> RunRequest:
    return RunRequest(
        run_key=f"{kind}:{start}...{end}@{tick.isoformat()}",
        tags={RANGE_START_TAG: start, RANGE_END_TAG: end, "esputnik_sync/trigger": kind},
    )


def build_schedules(env: dict[str, str] | None = None) -> list[ScheduleDefinition]:
    """Schedules configured by SYNC_NIGHTLY_CRON, SYNC_WEEKLY_CRON, SYNC_SCHEDULE_TIMEZONE and
    SYNC_LOOKBACK_DAYS (read when the code location loads)."""
    env = dict(os.environ if env is None else env)
    timezone = env.get("SYNC_SCHEDULE_TIMEZONE") or "UTC"
    lookback_days = int(env.get("SYNC_LOOKBACK_DAYS") or 30)
    if lookback_days < 1:
        raise ValueError(f"SYNC_LOOKBACK_DAYS={lookback_days} must be 1 or more")
    first_day = subscribed_date_partitions.start.date()

    @schedule(
        name="esputnik_sync_nightly",
        job=esputnik_sync_job,
        cron_schedule=env.get("SYNC_NIGHTLY_CRON") or "0 2 * * *",
        execution_timezone=timezone,
        default_status=DefaultScheduleStatus.STOPPED,
        description=(
            f"One run over the last {lookback_days} days of subscriptions, so late CRM links "
            "and late rows are picked up; only tokens not yet pushed are sent."
        ),
    )
    def nightly(context: ScheduleEvaluationContext) -> RunRequest:
        tick = context.scheduled_execution_time
        start, end = lookback_range(tick, lookback_days, first_day)
        return range_request("nightly", start, end, tick)

    @schedule(
        name="esputnik_sync_weekly_full",
        job=esputnik_sync_job,
        cron_schedule=env.get("SYNC_WEEKLY_CRON") or "0 4 * * 0",
        execution_timezone=timezone,
        default_status=DefaultScheduleStatus.STOPPED,
        description="One run over every day since 2020-01-01: catches anything older than the lookback.",
    )
    def weekly_full(context: ScheduleEvaluationContext) -> RunRequest:
        tick = context.scheduled_execution_time
        return range_request("weekly_full", first_day.isoformat(), tick.date().isoformat(), tick)

    delivery = ScheduleDefinition(
        name="esputnik_delivery_nightly",
        job=esputnik_delivery_job,
        cron_schedule=env.get("SYNC_DELIVERY_CRON") or "30 1 * * *",
        execution_timezone=timezone,
        default_status=DefaultScheduleStatus.STOPPED,
        description=(
            "Message statuses into the ledger before the nightly sync, so blocked-then-returned "
            "subscribers are pushed again that night."
        ),
    )
    return [nightly, weekly_full, delivery]
