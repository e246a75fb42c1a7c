"""Typed metadata tables and masked samples: rendered by the UI as tables, not markdown, and
never showing a whole phone number, email or customer id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from dagster_project.core.expectations import ExpectationOutcome
from dagster_project.core.masking import mask_email, mask_phone, redact_personal_data
from dagster_project.core.validation import REJECTS_PER_REASON

SAMPLE_ROWS = 10
MASKED = ("string", "masked")


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


def plain_value(value: object) -> object:
    """A metadata-ready Python value: None where pandas has a missing one (NaN, NA, NaT)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value.item() if hasattr(value, "item") else value


def table(columns: Mapping[str, tuple[str, str]], rows: Iterable[Mapping[str, object]]):
    """A typed table: ``columns`` maps each name to (type, description)."""
    schema = TableSchema(
        columns=[
            TableColumn(name, kind, description) for name, (kind, description) in columns.items()
        ]
    )
    records = [TableRecord({name: plain_value(row.get(name)) for name in columns}) for row in rows]
    return MetadataValue.table(records, schema)


def counts(reason_counts: Mapping[str, int], what: str) -> MetadataValue:
    """Rows per reason, as a table."""
    columns = {"reason": ("string", what), "rows": ("int", "rows this run")}
    return table(columns, [{"reason": k, "rows": int(v)} for k, v in reason_counts.items()])


def counts_table(title: str, figures: Mapping[str, int | float]) -> str:
    """A small markdown summary (for figures that are not rows of one kind)."""
    lines = [f"**{title}**", "", "| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value:,} |" for name, value in figures.items()]
    return "\n".join(lines)


REJECT_COLUMNS = {
    "source_row": ("int", "row of the run's extract"),
    "chat_id": MASKED,
    "customer_id": MASKED,
    "outcome": ("string", "rejected, or identifier_dropped"),
    "reason": ("string", "why"),
    "detail": ("string", "the rule's words, values masked"),
}


def rejects_sample(rejects: pd.DataFrame) -> MetadataValue:
    """The first rows of each reason, identifiers masked."""
    sample = (
        rejects.groupby("reason", sort=True).head(REJECTS_PER_REASON).head(SAMPLE_ROWS)
        if not rejects.empty
        else rejects
    )
    rows = [
        {
            "source_row": int(row.source_row),
            "chat_id": mask_identifier(row.chat_id),
            "customer_id": mask_identifier(row.customer_id),
            "outcome": row.outcome,
            "reason": row.reason,
            "detail": str(row.detail or "")[:80],
        }
        for row in sample.itertuples()
    ]
    return table(REJECT_COLUMNS, rows)


def quarantine_sample(quarantined: list[tuple[str, str]]) -> MetadataValue:
    """Tokens eSputnik refused, masked, with its reason (the token masked in it too)."""
    columns = {"token": MASKED, "reason": ("string", "eSputnik's reason")}
    rows = [
        {
            "token": mask_identifier(token),
            "reason": reason.replace(token, mask_identifier(token))[:120],
        }
        for token, reason in quarantined[:SAMPLE_ROWS]
    ]
    return table(columns, rows)


PAYLOAD_COLUMNS = dict.fromkeys(
    ("token", "contact_id", "external_customer_id", "phone", "email"), MASKED
)


def payload_sample(rows: list[dict]) -> MetadataValue:
    """What a dry run would send, identifiers masked."""
    return table(
        PAYLOAD_COLUMNS, [{c: mask_identifier(r.get(c)) for c in PAYLOAD_COLUMNS} for r in rows]
    )


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
    """The per-day delivery figures; a rate without a denominator stays empty (a day with
    failures or clicks but nothing sent is real, not an error)."""
    return table(DELIVERY_DAY_COLUMNS, daily.to_dict("records"))


EXPECTATION_COLUMNS = {
    "expectation": ("string", "Great Expectations expectation"),
    "column": ("string", "column of the checked frame"),
    "unexpected_rows": ("int", "rows that broke it"),
    "sample": ("string", "values of the first rows that broke it, phones and emails masked"),
}


def sample_text(values: Iterable[object]) -> str:
    """Unexpected values for the UI: each repr'd, any phone number or email in it masked."""
    return ", ".join(redact_personal_data(repr(str(v))[:34]) for v in values)


def expectations_table(outcomes: Iterable[ExpectationOutcome]) -> MetadataValue:
    """Expectations that failed, with how many rows broke each and a masked sample."""
    rows = [
        {
            "expectation": e.name,
            "column": e.column,
            "unexpected_rows": e.unexpected_count,
            "sample": sample_text(e.unexpected_values[:SAMPLE_ROWS]),
        }
        for e in outcomes
    ]
    return table(EXPECTATION_COLUMNS, rows)
