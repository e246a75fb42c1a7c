"""The code location loads and exposes the names operations scripts rely on."""

import itertools
import subprocess
import sys

from dagster import AssetKey, DailyPartitionsDefinition

from dagster_project.assets import GROUP
from dagster_project.definitions import defs

SYNC_ASSETS = [
    "subscriber_extract",
    "validated_subscribers",
    "new_esputnik_tokens",
    "esputnik_pushed_tokens",
]


def test_sync_assets_form_the_group_in_order():
    graph = defs.resolve_asset_graph()
    keys = {key for key in graph.get_all_asset_keys() if graph.get(key).group_name == GROUP}
    assert keys == {AssetKey(name) for name in SYNC_ASSETS}
    for upstream, downstream in itertools.pairwise(SYNC_ASSETS):
        assert AssetKey(upstream) in graph.get(AssetKey(downstream)).parent_keys


def test_daily_utc_partitions_from_2020_run_as_one_backfill():
    graph = defs.resolve_asset_graph()
    for name in SYNC_ASSETS:
        node = graph.get(AssetKey(name))
        partitions = node.partitions_def
        assert isinstance(partitions, DailyPartitionsDefinition)
        assert partitions.start.strftime("%Y-%m-%d") == "2020-01-01"
        assert partitions.timezone == "UTC"
        assert node.backfill_policy.max_partitions_per_run is None  # single run
        assert node.description


def test_loading_the_code_location_prints_no_warnings():
    """Every run and CLI call loads it: a warning there repeats in every log."""
    loaded = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import dagster_project.definitions"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Warning" not in loaded.stderr, loaded.stderr


def test_a_process_that_loaded_it_exits_with_its_heap_frozen():
    """Exit hooks run last-registered first: one registered before the import runs after the
    code location's and finds the objects frozen, with its own output still flushed."""
    probe = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count()))\n"
        "import dagster_project.definitions\n"
        "print('frozen while running:', gc.get_freeze_count())\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    running, exiting = (int(line.split(":")[1]) for line in ran.stdout.splitlines())
    assert running == 0  # the run itself keeps normal garbage collection
    assert exiting > 100_000  # Dagster, pandas, SQLAlchemy, ...


def test_payload_check_blocks_the_push():
    graph = defs.resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert checks["payload_contract"].blocking


def test_delivery_assets_and_schedules_are_loaded():
    graph = defs.resolve_asset_graph()
    delivery = {
        k.path[-1]
        for k in graph.get_all_asset_keys()
        if graph.get(k).group_name == "esputnik_delivery"
    }
    assert delivery == {"esputnik_message_events_ingested", "esputnik_delivery_metrics"}
    names = {schedule.name for schedule in defs.schedules}
    assert names == {
        "esputnik_sync_nightly",
        "esputnik_sync_weekly_full",
        "esputnik_delivery_nightly",
    }
    assert [sensor.name for sensor in defs.sensors] == ["esputnik_sync_failure_alert"]
