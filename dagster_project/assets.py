"""The sync as four assets: extract -> validate -> diff -> push.

Every run reconciles the whole warehouse against the ledger (or a range of subscription dates
given in run config, or, with a separate state database, the rows changed since the last run).
Each step keeps its data in staging tables of the state database, keyed by the run's batch id
(the root run id, so a re-execution from failure picks up its parent's batch); only small
metadata passes through Dagster, once per run and asset. The bodies call ``steps`` and return
what ``reporting`` makes of it.
"""

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    TableColumn,
    TableSchema,
    asset,
)
from pydantic import Field

from dagster_project import extract_step, steps
from dagster_project.core.expectations import SUITE_NAME
from dagster_project.core.extract_expectations import RAW_SUITE_NAME
from dagster_project.core.ledger import LEDGER_CHECK_DESCRIPTION
from dagster_project.delivery_assets import esputnik_message_events_ingested
from dagster_project.freshness import pushed_tokens_freshness
from dagster_project.reporting import (
    COMPLETENESS_CHECK,
    IN_DOUBT_CHECK,
    LEDGER_CHECK,
    MASS_CHANGE_CHECK,
    PAYLOAD_CHECK,
    QUARANTINE_CHECK,
    RAW_CHECK,
    TIMESTAMPS_CHECK,
    diff_result,
    extract_result,
    push_result,
    validate_result,
)
from dagster_project.resources import EsputnikResource, WarehouseResource
from dagster_project.settings import SyncSettings
from dagster_project.sources import OWNERS, crm_contacts, telegram_subscribers

GROUP = "esputnik_token_sync"
PUSH_POOL = "esputnik_push"
ALLOW_MASS_CHANGE_TAG = "esputnik_sync/allow_mass_change"

sync_asset = dict(group_name=GROUP, kinds={"sql", "python"}, owners=OWNERS)


class SyncScopeConfig(Config):
    """Run config of ``subscriber_extract``: leave it empty to reconcile every subscriber."""

    subscribed_from: str | None = Field(
        default=None, description="first subscription day to read (YYYY-MM-DD, UTC); a backfill"
    )
    subscribed_to: str | None = Field(
        default=None, description="last subscription day to read, inclusive (YYYY-MM-DD, UTC)"
    )
    full_scan: bool = Field(
        default=False,
        description="with a separate state database (SYNC_STATE_URL): read every subscriber, "
        "not only those changed since the last run",
    )


LEDGER_TABLE = "esputnik_token_ledger"
LEDGER_SCHEMA = TableSchema(
    columns=[
        TableColumn("app_uuid", "text", description="the eSputnik app"),
        TableColumn("token", "text", description="the Telegram chat id, normalized"),
        TableColumn("contact_id", "bigint"),
        TableColumn("external_customer_id", "text"),
        TableColumn("phone", "text", description="international digits"),
        TableColumn("email", "text", description="lowercased"),
        TableColumn("pushed_at", "timestamp", description="when eSputnik accepted it (UTC)"),
        TableColumn("run_id", "text"),
        TableColumn("chunk_no", "integer"),
        TableColumn("removed_at", "timestamp", description="eSputnik dropped it (Forbidden)"),
        TableColumn("removal_reason", "text"),
    ]
)


def sync_step(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> steps.Step:
    """What a step works with; its batch id (the root run's id) is the staging key shared by
    every step of a run and by its re-executions."""
    ids = steps.RunIds(context.run.root_run_id or context.run.run_id, context.run.run_id)
    return steps.Step(warehouse, esputnik, sync_settings, ids, context.log.info)


@asset(
    **sync_asset,
    deps=[esputnik_message_events_ingested, telegram_subscribers, crm_contacts],
    check_specs=[
        AssetCheckSpec(
            TIMESTAMPS_CHECK,
            asset="subscriber_extract",
            description=(
                "On a SQLite warehouse, every subscribed_at and status_changed_at of "
                "telegram_subscribers is UTC text 'YYYY-MM-DD HH:MM:SS': SQLite compares them as "
                "text, so an epoch number, a 'T' or an offset would leave the row out unseen."
            ),
        ),
    ],
    description=(
        "Every bot subscriber LEFT JOINed to CRM contacts (sql/extract_subscribers.sql) whose "
        "token is not live in the ledger, copied into esputnik_stage_extract. Run config can "
        "narrow a run to a range of subscription dates. Runs after the message-status ingest, "
        "so a removal reported today is acted on tonight."
    ),
)
def subscriber_extract(
    context: AssetExecutionContext,
    config: SyncScopeConfig,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    scope = (config.subscribed_from, config.subscribed_to, config.full_scan)
    step = sync_step(context, warehouse, esputnik, sync_settings)
    return extract_result(extract_step.extract(step, scope))


@asset(
    **sync_asset,
    deps=[subscriber_extract],
    check_specs=[
        AssetCheckSpec(
            PAYLOAD_CHECK,
            asset="validated_subscribers",
            blocking=True,
            description=(
                f"Great Expectations suite {SUITE_NAME!r} over the rows to send: tokens present "
                "and unique, at least one identifier, identifier formats. Blocks the push."
            ),
        ),
        AssetCheckSpec(
            RAW_CHECK,
            asset="validated_subscribers",
            description=(
                f"Great Expectations suite {RAW_SUITE_NAME!r} over the rows validated, as the "
                "warehouse gave them: chat ids present, statuses active or blocked (any case, "
                "trimmed), at least SYNC_MIN_PHONE_SHARE with a phone and SYNC_MIN_EMAIL_SHARE "
                "with an email. Warns of drift in the CRM; blocks nothing."
            ),
        ),
        AssetCheckSpec(
            COMPLETENESS_CHECK,
            asset="validated_subscribers",
            blocking=True,
            description=(
                "Share of the active subscribers with no identifier at all (no CRM "
                "contact, no shared phone) stays under SYNC_MAX_NO_IDENTIFIER_SHARE; a broken "
                "CRM join blocks the push."
            ),
        ),
    ],
    description=(
        "One row per token that may be sent: rows whose token is already live in the ledger are "
        "skipped (set-based, in SQL); the rest get identifiers normalized (phone to "
        "international digits, email lowercased and validated), blocked and unusable rows "
        "refused with a reason (table esputnik_sync_rejects), then a Great Expectations suite."
    ),
)
def validated_subscribers(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    return validate_result(steps.validate(sync_step(context, warehouse, esputnik, sync_settings)))


@asset(
    **sync_asset,
    deps=[validated_subscribers],
    check_specs=[
        AssetCheckSpec(
            MASS_CHANGE_CHECK,
            asset="new_esputnik_tokens",
            blocking=True,
            description=(
                "New tokens stay under SYNC_MASS_CHANGE_MULTIPLE times the average of recent runs "
                "(never below SYNC_MASS_CHANGE_MIN_TOKENS): a replayed table must not flood "
                f"eSputnik. Override with SYNC_ALLOW_MASS_CHANGE=true or run tag "
                f"{ALLOW_MASS_CHANGE_TAG}=true."
            ),
        )
    ],
    description=(
        "Valid tokens the ledger (esputnik_token_ledger) does not hold for this app: a set-based "
        "anti-join in the state database, staged in esputnik_stage_new."
    ),
)
def new_esputnik_tokens(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    allowed = context.run.tags.get(ALLOW_MASS_CHANGE_TAG, "").lower() == "true"
    step = sync_step(context, warehouse, esputnik, sync_settings)
    return diff_result(steps.diff(step, allowed))


@asset(
    **sync_asset,
    deps=[new_esputnik_tokens],
    pool=PUSH_POOL,
    freshness_policy=pushed_tokens_freshness,
    tags={"system": "esputnik"},
    metadata={"dagster/table_name": LEDGER_TABLE, "dagster/column_schema": LEDGER_SCHEMA},
    check_specs=[
        AssetCheckSpec(
            LEDGER_CHECK, asset="esputnik_pushed_tokens", description=LEDGER_CHECK_DESCRIPTION
        ),
        AssetCheckSpec(
            IN_DOUBT_CHECK,
            asset="esputnik_pushed_tokens",
            description=(
                "Tokens whose request got no usable answer twice (eSputnik may hold two copies) "
                "stay at zero; they are never sent again until released with "
                "python -m dagster_project.release in-doubt."
            ),
        ),
        AssetCheckSpec(
            QUARANTINE_CHECK,
            asset="esputnik_pushed_tokens",
            description=(
                "Tokens eSputnik refused (quarantined) in this run stay under "
                "SYNC_MAX_QUARANTINED_TOKENS."
            ),
        ),
    ],
    description=(
        "New tokens posted to eSputnik (POST /v1/apps/{app_uuid}/tokens) in chunks of "
        "ESPUTNIK_CHUNK_SIZE; each accepted chunk is written to the ledger in its own "
        "transaction, so a rerun never resends an accepted chunk. A chunk refused with 400 is "
        "split until the offending tokens are alone; those are quarantined with the reason. "
        "Runs under a push lock (Dagster pool + database lock): concurrent runs never send the "
        "same token twice. With SYNC_DRY_RUN it only reports what it would send."
    ),
)
def esputnik_pushed_tokens(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    esputnik: EsputnikResource,
    sync_settings: SyncSettings,
) -> MaterializeResult:
    step = steps.push(sync_step(context, warehouse, esputnik, sync_settings))
    if step.push.tokens_quarantined:
        context.log.warning(
            f"{step.push.tokens_quarantined} tokens refused by eSputnik and quarantined "
            "(table esputnik_token_quarantine); they are retried once their identifiers change"
        )
    return push_result(step)


sync_assets = [
    subscriber_extract,
    validated_subscribers,
    new_esputnik_tokens,
    esputnik_pushed_tokens,
]
