"""Builders shared by the tests: warehouse rows, resources, a sync run, sandbox look-ups."""

from __future__ import annotations

from collections import Counter

from dagster import DagsterInstance, materialize
from sqlalchemy import Engine, create_engine, text

from dagster_project.assets import sync_assets
from dagster_project.resources import AlertWebhookResource, EsputnikResource, WarehouseResource
from dagster_project.sandbox import SandboxServer
from dagster_project.settings import SyncSettings
from dagster_project.warehouse_seed import create_warehouse_schema

API_KEY = "test-secret-key-8c1f"
APP_UUID = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"


def scope_config(**fields: object) -> dict:
    """Run config of ``subscriber_extract``: a range of subscription days, or a full scan."""
    return {"ops": {"subscriber_extract": {"config": fields}}}


def warehouse_engine(url: str) -> Engine:
    engine = create_engine(url)
    create_warehouse_schema(engine)
    return engine


def add_contacts(engine: Engine, *contacts: dict) -> None:
    rows = [
        {"esputnik_contact_id": None, "email": None, "phone": None, "updated_at": "2026-01-01"} | c
        for c in contacts
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO crm_contacts (customer_id, esputnik_contact_id, email, phone,"
                " updated_at) VALUES (:customer_id, :esputnik_contact_id, :email, :phone,"
                " :updated_at)"
            ),
            rows,
        )


def add_subscribers(engine: Engine, *subscribers: dict) -> None:
    rows = [
        {"customer_id": None, "phone": None, "status": "active", "status_changed_at": None} | s
        for s in subscribers
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO telegram_subscribers (chat_id, customer_id, phone, status,"
                " subscribed_at, status_changed_at) VALUES (:chat_id, :customer_id, :phone,"
                " :status, :subscribed_at, :status_changed_at)"
            ),
            rows,
        )


def add_phone_subscribers(
    engine: Engine, tokens: list[str], subscribed_at: str = "2026-01-10 10:00:00"
) -> None:
    """Active subscribers with a distinct valid phone each and no CRM link."""
    add_subscribers(
        engine,
        *[
            {"chat_id": token, "phone": f"+38050{n:07d}", "subscribed_at": subscribed_at}
            for n, token in enumerate(tokens)
        ],
    )


def sync_resources(
    warehouse_url: str,
    sandbox: SandboxServer,
    chunk_size: int = 2,
    settings: dict | None = None,
    **esputnik: object,
) -> dict:
    """Resources for a run against the sandbox; keyword arguments override EsputnikResource."""
    esputnik_fields = {
        "api_key": API_KEY,
        "app_uuid": APP_UUID,
        "base_url": sandbox.base_url,
        "chunk_size": chunk_size,
        "backoff_seconds": 0.01,
    } | esputnik
    return {
        "warehouse": WarehouseResource(url=warehouse_url),
        "esputnik": EsputnikResource(**esputnik_fields),
        # The small fixtures are a third anonymous on purpose; the guard has its own tests.
        "sync_settings": SyncSettings(**({"max_no_identifier_share": 0.5} | (settings or {}))),
        "alerts": AlertWebhookResource(),
    }


def run_sync(
    resources: dict,
    run_config: dict | None = None,
    tags: dict[str, str] | None = None,
    instance=None,
):
    """Materialize the whole sync group as one run (every subscriber unless ``run_config``
    narrows it)."""
    return materialize(
        sync_assets,
        resources=resources,
        instance=instance or DagsterInstance.ephemeral(),
        run_config=run_config,
        tags=tags,
        raise_on_error=False,
    )


def last_metadata(result, asset_name: str) -> dict[str, object]:
    """Metadata values of an asset's (last) materialization in a run."""
    events = result.asset_materializations_for_node(asset_name)
    return {key: value.value for key, value in events[-1].metadata.items()}


def stored_tokens(sandbox: SandboxServer) -> list[dict]:
    return sandbox.state.snapshot()["tokens"]


def token_counts(sandbox: SandboxServer) -> Counter:
    return Counter(t["token"] for t in stored_tokens(sandbox))


def sent_identifiers(sandbox: SandboxServer) -> dict[str, dict]:
    """token -> identifiers it was sent with (last copy)."""
    return {t["token"]: t["sent"] for t in stored_tokens(sandbox)}


def run_delivery(resources: dict, instance=None):
    """Materialize the message-status ingest and the delivery metrics."""
    from dagster_project.delivery_assets import delivery_assets

    return materialize(
        delivery_assets,
        resources=resources,
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
