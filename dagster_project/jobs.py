"""The jobs a schedule or the UI's launchpad starts."""

from dagster import AssetSelection, define_asset_job

from dagster_project.assets import GROUP
from dagster_project.delivery_assets import DELIVERY_GROUP

# The nightly shape: message statuses into the ledger first (the asset graph orders it), then
# the sync over every subscriber, and the delivery figures.
esputnik_sync_job = define_asset_job(
    "esputnik_token_sync_job",
    selection=AssetSelection.groups(DELIVERY_GROUP, GROUP),
    description=(
        "Apply new message statuses to the ledger, then reconcile every subscriber with it: "
        "extract, validate, diff and push the tokens eSputnik lacks."
    ),
)

esputnik_delivery_job = define_asset_job(
    "esputnik_delivery_job",
    selection=AssetSelection.groups(DELIVERY_GROUP),
    description="Apply new message statuses to the ledger and recompute delivery per day.",
)
