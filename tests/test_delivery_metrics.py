"""Delivery figures on awkward days: failures or clicks with nothing sent, on both databases."""

from datetime import datetime, timedelta

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize
from sqlalchemy import create_engine

from dagster_project.core.db import append_frame, utc_now
from dagster_project.core.events import daily_delivery
from dagster_project.core.schema import ensure_state_schema
from dagster_project.delivery_assets import esputnik_delivery_metrics
from dagster_project.metadata_tables import delivery_days_table
from dagster_project.resources import EsputnikResource, WarehouseResource
from dagster_project.settings import SyncSettings
from tests.helpers import API_KEY, APP_UUID, last_metadata

DAY_SHAPES = {
    "only_failures": [("FAILED", "Forbidden", 3), ("FAILED", "Timeout", 1)],
    "only_clicks": [("CLICKED", None, 2)],
    "nothing_sent": [],
}


def counts(shape: list[tuple[str, str | None, int]], day: str = "2026-02-01") -> pd.DataFrame:
    rows = [{"day": day, "status": s, "reason": r, "events": n} for s, r, n in shape]
    return pd.DataFrame(rows, columns=["day", "status", "reason", "events"])


@pytest.mark.parametrize("shape", ["only_failures", "only_clicks"])
def test_rates_without_sent_messages_are_empty_in_the_table(shape):
    daily = daily_delivery(counts(DAY_SHAPES[shape]))
    assert daily[["click_rate", "blocked_rate"]].isna().all().all()
    table = delivery_days_table(daily)
    (record,) = table.records
    assert record.data["click_rate"] is None and record.data["blocked_rate"] is None
    assert record.data["sent"] == 0 and isinstance(record.data["failed"], int)
    assert [c.name for c in table.schema.columns][-2:] == ["click_rate", "blocked_rate"]


def test_a_day_with_nothing_sent_gives_an_empty_table():
    table = delivery_days_table(daily_delivery(counts(DAY_SHAPES["nothing_sent"])))
    assert table.records == []


def processed(status: str, reason: str | None, when: datetime, n: int) -> list[dict]:
    return [
        {
            "app_uuid": APP_UUID,
            "event_key": f"{status}-{when:%Y%m%d}-{i}",
            "token": str(1000 + i),
            "message_id": "m-1",
            "status": status,
            "reason": reason,
            "occurred_at": when,
            "run_id": "r",
            "processed_at": when,
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("shape", ["only_failures", "only_clicks", "nothing_sent"])
def test_delivery_metrics_materialize_on_days_without_sent(warehouse_url, shape):
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    yesterday = utc_now().replace(microsecond=0) - timedelta(days=1)
    rows = [r for s, why, n in DAY_SHAPES[shape] for r in processed(s, why, yesterday, n)]
    with engine.begin() as conn:
        append_frame(conn, "esputnik_message_events_processed", pd.DataFrame(rows))
    result = materialize(
        [esputnik_delivery_metrics],
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "esputnik": EsputnikResource(api_key=API_KEY, app_uuid=APP_UUID),
            "sync_settings": SyncSettings(),
        },
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    metadata = last_metadata(result, "esputnik_delivery_metrics")
    assert metadata["click_rate"] is None and metadata["blocked_rate"] is None
    assert metadata["days"] == (0 if shape == "nothing_sent" else 1)
    assert len(metadata["last_14_days"].records) == metadata["days"]
