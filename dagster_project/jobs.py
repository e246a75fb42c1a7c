"""The sync as a job, for schedules and the UI's launchpad."""

from dagster import AssetSelection, define_asset_job

from dagster_project.assets import GROUP
from dagster_project.delivery_assets import DELIVERY_GROUP

esputnik_sync_job = define_asset_job(
    "esputnik_token_sync_job",
    selection=AssetSelection.groups(GROUP),
    description="Extract, validate, diff and push eSputnik tokens over a range of days.",
)

esputnik_delivery_job = define_asset_job(
    "esputnik_delivery_job",
    selection=AssetSelection.groups(DELIVERY_GROUP),
    description="Apply new message statuses to the ledger and recompute delivery per day.",
)
