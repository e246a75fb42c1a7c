"""The code location loads and exposes the names operations scripts rely on."""

import itertools
import subprocess
import sys

from dagster import AssetKey

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


def test_sync_assets_are_unpartitioned_and_run_after_the_status_ingest():
    """Dagster's cost per run stays flat: no partitions. The ingest orders before the sync
    through the graph, so a removal reported today is acted on tonight."""
    graph = defs.resolve_asset_graph()
    for name in SYNC_ASSETS:
        node = graph.get(AssetKey(name))
        assert node.partitions_def is None
        assert node.description
    assert (
        AssetKey("esputnik_message_events_ingested")
        in graph.get(AssetKey("subscriber_extract")).parent_keys
    )
    job = defs.resolve_job_def("esputnik_token_sync_job")
    assert set(job.graph.node_names()) == {
        *SYNC_ASSETS,
        "esputnik_message_events_ingested",
        "esputnik_delivery_metrics",
    }


def test_pushed_tokens_carry_a_freshness_policy():
    node = defs.resolve_asset_graph().get(AssetKey("esputnik_pushed_tokens"))
    assert node.freshness_policy is not None


def test_loading_the_code_location_prints_no_warnings():
    """Every run and CLI call loads it: a warning there repeats in every log."""
    loaded = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import dagster_project.definitions"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Warning" not in loaded.stderr, loaded.stderr


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
    assert names == {"esputnik_sync_nightly"}
    assert [sensor.name for sensor in defs.sensors] == [
        "esputnik_sync_failure_alert",
        "esputnik_sync_freshness_alert",
    ]


def test_lineage_starts_at_the_warehouse_tables_and_the_ledger_is_catalogued():
    graph = defs.resolve_asset_graph()
    extract = graph.get(AssetKey("subscriber_extract"))
    assert {AssetKey("crm_contacts"), AssetKey("telegram_subscribers")} <= extract.parent_keys
    ingest = graph.get(AssetKey("esputnik_message_events_ingested"))
    assert AssetKey("esputnik_message_events") in ingest.parent_keys
    for source in ("crm_contacts", "telegram_subscribers", "esputnik_message_events"):
        assert not graph.get(AssetKey(source)).is_materializable  # loaded elsewhere
    ledger = graph.get(AssetKey("esputnik_pushed_tokens"))
    assert ledger.metadata["dagster/table_name"] == "esputnik_token_ledger"
    columns = [c.name for c in ledger.metadata["dagster/column_schema"].columns]
    assert columns[:2] == ["app_uuid", "token"] and "removed_at" in columns
    assert ledger.owners and ledger.tags["system"] == "esputnik"
