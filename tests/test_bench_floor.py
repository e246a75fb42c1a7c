"""The bench's floor run (bench/floor.py) and the subscription dates it generates."""

from __future__ import annotations

from dagster import AssetKey, materialize

from bench import datagen
from bench.floor import ASSET, bench_floor, defs, floor_command


def test_floor_defs_hold_one_unpartitioned_asset():
    graph = defs.resolve_asset_graph()
    assert graph.get_all_asset_keys() == {AssetKey(ASSET)}
    assert graph.get(AssetKey(ASSET)).partitions_def is None


def test_floor_asset_materializes():
    result = materialize([bench_floor])
    assert result.success
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [AssetKey(ASSET)]


def test_floor_command_is_the_sync_cli_shape_on_the_floor_module():
    command = floor_command()
    assert command[1:] == ["asset", "materialize", "-m", "bench.floor", "--select", ASSET]


def test_generated_subscriptions_span_the_whole_history():
    """Late arrivals matter: a batch of new chat ids carries old subscription dates too."""
    batch = datagen.generate(5_000, first_id=1_000_000, seed=3)
    days = sorted(value[:10] for value in batch.subscribers["subscribed_at"])
    assert "2020-01-01" <= days[0] < "2020-06-01"
    assert "2026-06-01" < days[-1] <= "2026-11-23"
    years = {day[:4] for day in days}
    assert years == {str(year) for year in range(2020, 2027)}
