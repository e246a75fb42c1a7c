"""The code location: assets, checks, jobs, the schedule, sensors and resources of the sync."""

from dagster import Definitions, in_process_executor

from dagster_project.assets import sync_assets
from dagster_project.delivery_assets import delivery_assets
from dagster_project.jobs import esputnik_delivery_job, esputnik_sync_job
from dagster_project.resources import resources_from_env
from dagster_project.schedules import build_schedules
from dagster_project.sensors import sync_failure_alert, sync_freshness_alert
from dagster_project.sources import warehouse_sources

defs = Definitions(
    assets=[*warehouse_sources, *delivery_assets, *sync_assets],
    jobs=[esputnik_sync_job, esputnik_delivery_job],
    schedules=build_schedules(),
    sensors=[sync_failure_alert, sync_freshness_alert],
    resources=resources_from_env(),
    # The steps run one after another and share no memory: one process spares their start-ups.
    executor=in_process_executor,
)
