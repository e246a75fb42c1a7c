"""The code location: assets, checks, job, schedules, sensor and resources of the sync."""

from dagster import Definitions, in_process_executor

from dagster_project.assets import sync_assets
from dagster_project.delivery_assets import delivery_assets
from dagster_project.jobs import esputnik_delivery_job, esputnik_sync_job
from dagster_project.resources import from_env, resources_from_env
from dagster_project.schedules import build_schedules
from dagster_project.sensors import AlertWebhookResource, sync_failure_alert
from dagster_project.shutdown import skip_collection_at_exit

defs = Definitions(
    assets=[*sync_assets, *delivery_assets],
    jobs=[esputnik_sync_job, esputnik_delivery_job],
    schedules=build_schedules(),
    sensors=[sync_failure_alert],
    resources={
        **resources_from_env(),
        "alerts": from_env(AlertWebhookResource),
    },
    # The steps run one after another and share no memory: one process spares three start-ups.
    executor=in_process_executor,
)

# A run's process ends right after its last event: spare it the final garbage-collector sweep.
skip_collection_at_exit()
