"""The code location: assets, checks and resources of the eSputnik token sync."""

from dagster import Definitions, in_process_executor

from dagster_project.assets import sync_assets
from dagster_project.resources import resources_from_env

defs = Definitions(
    assets=sync_assets,
    resources=resources_from_env(),
    # The steps run one after another and share no memory: one process spares three start-ups.
    executor=in_process_executor,
)
