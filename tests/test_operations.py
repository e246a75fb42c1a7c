"""Operating the sync: guards that block a bad push, schedules, failure alerts."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
)
from sqlalchemy import text

from dagster_project import sensors
from dagster_project.definitions import defs
from dagster_project.resources import AlertWebhookResource, WarehouseResource
from dagster_project.sensors import stale_since, sync_failure_alert, sync_freshness_alert
from tests.helpers import (
    API_KEY,
    APP_UUID,
    add_contacts,
    add_phone_subscribers,
    add_subscribers,
    last_metadata,
    run_sync,
    sync_resources,
    token_counts,
    warehouse_engine,
)


def check(result, name):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_broken_crm_join_blocks_the_push(sqlite_url, sandbox):
    engine = warehouse_engine(sqlite_url)
    # The CRM table is empty tonight: every subscriber's customer_id points nowhere.
    add_subscribers(
        engine,
        *[
            {"chat_id": str(n), "customer_id": f"C-{n}", "subscribed_at": "2026-01-05 10:00:00"}
            for n in range(8)
        ],
        {"chat_id": "99", "phone": "0501234567", "subscribed_at": "2026-01-05 10:00:00"},
    )
    result = run_sync(
        sync_resources(sqlite_url, sandbox, settings={"max_no_identifier_share": 0.25})
    )
    assert not result.success
    verdict = check(result, "identifier_completeness")
    assert not verdict.passed
    assert verdict.metadata["share_without_identifier"].value == pytest.approx(8 / 9, abs=1e-3)
    assert sandbox.state.snapshot()["requests_seen"] == 0
    assert not result.asset_materializations_for_node("esputnik_pushed_tokens")


def test_flood_of_new_tokens_is_blocked_until_overridden(sqlite_url, sandbox):
    engine = warehouse_engine(sqlite_url)
    settings = {"mass_change_multiple": 3, "mass_change_min_tokens": 5}
    resources = sync_resources(sqlite_url, sandbox, settings=settings, chunk_size=50)
    for night in range(3):  # a few ordinary nights: 2 new subscribers each
        add_subscribers(
            engine,
            *[
                {
                    "chat_id": f"{night + 1}0{n}",
                    "phone": f"+38050000{night}{n:03d}",
                    "subscribed_at": "2026-01-05 10:00:00",
                }
                for n in range(2)
            ],
        )
        assert run_sync(resources).success
    # A replayed table: 40 "new" subscribers at once.
    add_subscribers(
        engine,
        *[
            {
                "chat_id": f"9{n:03d}",
                "phone": f"+38067000{n:04d}",
                "subscribed_at": "2026-01-06 10:00:00",
            }
            for n in range(40)
        ],
    )
    blocked = run_sync(resources)
    assert not blocked.success
    verdict = check(blocked, "mass_change_guard")
    assert not verdict.passed and verdict.metadata["recent_average"].value == 2
    assert sum(token_counts(sandbox).values()) == 6

    overridden = run_sync(resources, tags={"esputnik_sync/allow_mass_change": "true"})
    assert overridden.success
    assert sum(token_counts(sandbox).values()) == 46
    assert check(overridden, "mass_change_guard").passed
    assert check(overridden, "ledger_no_duplicates").passed


def test_quarantine_check_fails_above_its_limit(sqlite_url, sandbox):
    engine = warehouse_engine(sqlite_url)
    add_subscribers(
        engine,
        *[
            {
                "chat_id": f"70{n}",
                "phone": f"+3805000000{n:02d}",
                "subscribed_at": "2026-01-05 10:00:00",
            }
            for n in range(6)
        ],
    )
    sandbox.set_faults(reject_tokens=["701", "702", "703"])
    result = run_sync(
        sync_resources(sqlite_url, sandbox, chunk_size=6, settings={"max_quarantined_tokens": 2})
    )
    verdict = check(result, "push_quarantine")
    assert not verdict.passed and verdict.metadata["tokens_quarantined"].value == 3
    assert sum(token_counts(sandbox).values()) == 3


def test_nightly_schedule_requests_one_run_that_reconciles_everything(
    sqlite_url, sandbox, monkeypatch
):
    engine = warehouse_engine(sqlite_url)
    add_contacts(engine, {"customer_id": "C-1", "email": "a@example.com"})
    add_subscribers(
        engine,
        {"chat_id": "501", "customer_id": "C-1", "subscribed_at": "2026-10-30 10:00:00"},
        {"chat_id": "502", "phone": "0501234567", "subscribed_at": "2026-11-25 01:00:00"},
        {"chat_id": "503", "phone": "0501234568", "subscribed_at": "2019-03-26 23:00:00"},
    )
    schedule = defs.resolve_schedule_def("esputnik_sync_nightly")
    assert schedule.default_status.value == "STOPPED"
    tick = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    requests = schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=tick)
    ).run_requests
    assert len(requests) == 1
    request = requests[0]
    assert not request.run_config  # no range: every subscriber
    again = schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=tick)
    ).run_requests
    assert again[0].run_key == request.run_key  # a re-evaluated tick launches nothing new

    for name, value in {
        "ESPUTNIK_API_KEY": API_KEY,
        "ESPUTNIK_APP_UUID": APP_UUID,
        "ESPUTNIK_BASE_URL": sandbox.base_url,
        "WAREHOUSE_URL": sqlite_url,
    }.items():
        monkeypatch.setenv(name, value)
    from importlib import reload

    import dagster_project.definitions as definitions

    job = reload(definitions).defs.resolve_job_def("esputnik_token_sync_job")
    result = job.execute_in_process(tags=request.tags, instance=DagsterInstance.ephemeral())
    assert result.success
    assert set(token_counts(sandbox)) == {"501", "502", "503"}  # 503 subscribed years ago


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self):
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    _Webhook.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Webhook.received
    server.shutdown()


def test_failure_sensor_records_and_announces_the_reason(sqlite_url, sandbox, webhook, tmp_path):
    url, received = webhook
    engine = warehouse_engine(sqlite_url)
    add_subscribers(
        engine, {"chat_id": "1", "phone": "0501234567", "subscribed_at": "2026-01-05 10:00:00"}
    )
    with DagsterInstance.ephemeral() as instance:
        failed = run_sync(sync_resources(sqlite_url, sandbox, api_key="wrong"), instance=instance)
        assert not failed.success
        run = instance.get_run_by_id(failed.run_id)
        failure = instance.all_logs(failed.run_id, of_type=DagsterEventType.RUN_FAILURE)[0]
        failure = failure.dagster_event
        with build_run_status_sensor_context(
            sensor_name="esputnik_sync_failure_alert",
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=run,
            resources={
                "warehouse": WarehouseResource(url=sqlite_url),
                "alerts": AlertWebhookResource(url=url),
            },
        ) as context:
            sync_failure_alert(context.for_run_failure())
    assert len(received) == 1
    alert = received[0]["text"]
    assert (
        failed.run_id in alert
        and "ESPUTNIK_API_KEY" in alert
        and "__ephemeral_asset_job__" in alert
    )
    with engine.connect() as conn:
        status, reason = conn.execute(
            text("SELECT status, failure_reason FROM esputnik_sync_runs")
        ).one()
    assert status == "failed" and "ESPUTNIK_API_KEY" in reason


def test_history_shows_push_figures_per_run(sqlite_url, sandbox):
    engine = warehouse_engine(sqlite_url)
    add_subscribers(
        engine, {"chat_id": "1", "phone": "0501234567", "subscribed_at": "2026-01-05 10:00:00"}
    )
    resources = sync_resources(sqlite_url, sandbox)
    first, second = run_sync(resources), run_sync(resources)
    assert last_metadata(first, "esputnik_pushed_tokens")["tokens_pushed"] == 1
    assert last_metadata(second, "esputnik_pushed_tokens")["tokens_pushed"] == 0
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT run_id, status, tokens_new, tokens_pushed FROM esputnik_sync_runs ORDER BY started_at"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (first.run_id, "succeeded", 1, 1),
        (second.run_id, "succeeded", 0, 0),
    ]


@pytest.mark.parametrize(
    ("hours_ago", "stale"),
    [(None, False), (1, False), (25.9, False), (26, True), (24 * 5, True)],
)
def test_stale_since_follows_the_freshness_window(hours_ago, stale):
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    last = None if hours_ago is None else (now - timedelta(hours=hours_ago)).timestamp()
    assert (stale_since(last, now) is not None) is stale


def test_a_night_without_a_sync_is_announced_once(sqlite_url, sandbox, webhook, monkeypatch):
    url, received = webhook
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance, resources={"alerts": AlertWebhookResource(url=url)}
        )
        assert sync_freshness_alert(context) and received == []  # never synced: nothing expected
        add_phone_subscribers(warehouse_engine(sqlite_url), ["1"])
        assert run_sync(sync_resources(sqlite_url, sandbox), instance=instance).success
        assert sync_freshness_alert(context) and received == []  # fresh
        monkeypatch.setattr(sensors, "FRESHNESS_HOURS", 0)  # as if 26 hours had passed
        sync_freshness_alert(context)
        assert len(received) == 1 and "did not run" in received[0]["text"]
        second = build_sensor_context(
            instance=instance,
            cursor=context.cursor,
            resources={"alerts": AlertWebhookResource(url=url)},
        )
        sync_freshness_alert(second)
        assert len(received) == 1  # once per missed night, not every 15 minutes
