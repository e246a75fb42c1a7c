"""Materialization metadata a person can read and the UI can plot: stable numeric keys."""

from __future__ import annotations

import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from dagster_project.core.identifiers import mask_email, mask_phone
from dagster_project.core.validation import REJECTS_PER_REASON

SAMPLE_ROWS = 10


def mask_identifier(value: object) -> str:
    """Masked form of a chat id, phone, email or customer id for the UI."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    text = str(value)
    if "@" in text:
        return mask_email(text)
    if sum(c.isdigit() for c in text) >= 7:
        return mask_phone(text)
    return text[:2] + "***" if len(text) > 2 else "***"


def rejects_sample(rejects: pd.DataFrame) -> MetadataValue:
    """The first rows of each reason, identifiers masked, as a markdown table."""
    if rejects.empty:
        return MetadataValue.md("_no rejected rows_")
    sample = rejects.groupby("reason", sort=True).head(REJECTS_PER_REASON).head(SAMPLE_ROWS)
    rows = [
        [
            str(row.source_row),
            mask_identifier(row.chat_id),
            mask_identifier(row.customer_id),
            row.outcome,
            row.reason,
            str(row.detail or "")[:80],
        ]
        for row in sample.itertuples()
    ]
    header = ["source row", "chat id", "customer id", "outcome", "reason", "detail"]
    return markdown_table(header, rows)


def counts_table(title: str, counts: dict[str, int | float]) -> str:
    lines = [f"**{title}**", "", "| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value:,} |" for name, value in counts.items()]
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> MetadataValue:
    """A markdown table; pipes inside cells are replaced so rows stay intact."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))


def plain_value(value: object) -> object:
    """A metadata-ready Python value: None where pandas has a missing one (NaN, NA, NaT)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value.item() if hasattr(value, "item") else value


DELIVERY_DAY_COLUMNS = {
    "day": ("string", "UTC day the events occurred on"),
    "sent": ("int", "SENT events"),
    "failed": ("int", "FAILED events"),
    "failed_forbidden": ("int", "FAILED with reason Forbidden (bot blocked)"),
    "clicked": ("int", "CLICKED events"),
    "click_rate": ("float", "clicked / sent; empty when nothing was sent"),
    "blocked_rate": ("float", "failed_forbidden / sent; empty when nothing was sent"),
}


def delivery_days_table(daily: pd.DataFrame) -> MetadataValue:
    """The per-day delivery figures as a typed table; a rate without a denominator stays empty
    (a day with failures or clicks but nothing sent is real, not an error)."""
    schema = TableSchema(
        columns=[
            TableColumn(name, kind, description)
            for name, (kind, description) in DELIVERY_DAY_COLUMNS.items()
        ]
    )
    records = [
        TableRecord({name: plain_value(row[name]) for name in DELIVERY_DAY_COLUMNS})
        for row in daily.to_dict("records")
    ]
    return MetadataValue.table(records, schema)


def quarantine_sample(quarantined: list[tuple[str, str]]) -> MetadataValue:
    """Tokens eSputnik refused, masked, with its reason (the token masked in it too)."""
    if not quarantined:
        return MetadataValue.md("_no token quarantined_")
    rows = [
        [mask_identifier(token), reason.replace(token, mask_identifier(token))[:120]]
        for token, reason in quarantined[:SAMPLE_ROWS]
    ]
    return markdown_table(["token", "eSputnik's reason"], rows)


def payload_sample(rows: list[dict]) -> MetadataValue:
    """What a dry run would send, identifiers masked."""
    if not rows:
        return MetadataValue.md("_nothing to send_")
    columns = ["token", "contact_id", "external_customer_id", "phone", "email"]
    return markdown_table(columns, [[mask_identifier(r.get(c)) for c in columns] for r in rows])
