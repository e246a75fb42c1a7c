"""The warehouse tables the sync reads, as external assets: lineage starts where the data does.

Nothing here materializes them; they are loaded by the CRM and by whatever lands eSputnik's
message statuses. The reference schemas are sql/warehouse_schema.sql and
sql/message_events_schema.sql.
"""

from dagster import AssetSpec, TableColumn, TableSchema

WAREHOUSE_GROUP = "warehouse"
OWNERS = ["team:data-engineering"]


def _table(name: str, description: str, columns: list[tuple[str, str]]) -> AssetSpec:
    return AssetSpec(
        name,
        group_name=WAREHOUSE_GROUP,
        description=description,
        kinds={"sql"},
        owners=OWNERS,
        metadata={
            "dagster/table_name": name,
            "dagster/column_schema": TableSchema(
                columns=[TableColumn(column, kind) for column, kind in columns]
            ),
        },
    )


crm_contacts = _table(
    "crm_contacts",
    "CRM contacts: the customer id, eSputnik contact id, email and phone a token is sent with.",
    [
        ("customer_id", "varchar"),
        ("esputnik_contact_id", "bigint"),
        ("email", "varchar"),
        ("phone", "varchar"),
        ("updated_at", "timestamp"),
    ],
)

telegram_subscribers = _table(
    "telegram_subscribers",
    "The Telegram bot's subscribers: chat id (the token), status and the CRM customer they link to.",
    [
        ("chat_id", "varchar"),
        ("customer_id", "varchar"),
        ("phone", "varchar"),
        ("status", "varchar"),
        ("subscribed_at", "timestamp"),
        ("status_changed_at", "timestamp"),
    ],
)

esputnik_message_events = _table(
    "esputnik_message_events",
    "Message statuses eSputnik reported (SENT, FAILED with a reason, CLICKED), landed in the "
    "warehouse; FAILED/Forbidden means the user blocked the bot.",
    [
        ("token", "varchar"),
        ("message_id", "varchar"),
        ("status", "varchar"),
        ("reason", "varchar"),
        ("occurred_at", "timestamp"),
    ],
)

warehouse_sources = [crm_contacts, telegram_subscribers, esputnik_message_events]
