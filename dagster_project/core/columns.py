"""The columns of a staged extract row: what the extract query returns (plus the row's number),
what esputnik_stage_extract holds, and what the validation reads. Defined once for all three."""

RAW_COLUMNS = (
    "source_row",
    "chat_id",
    "subscriber_customer_id",
    "bot_phone",
    "status",
    "subscribed_at",
    "status_changed_at",
    "crm_customer_id",
    "esputnik_contact_id",
    "crm_email",
    "crm_phone",
)
# What the extract query returns: the same, less the row's number, which staging adds.
EXTRACT_COLUMNS = tuple(c for c in RAW_COLUMNS if c != "source_row")
