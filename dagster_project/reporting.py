"""Materialization metadata a person can read and the UI can plot: stable numeric keys."""

from __future__ import annotations

import pandas as pd
from dagster import MetadataValue

from dagster_project.core.identifiers import mask_email, mask_phone

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
    sample = rejects.groupby("reason", sort=True).head(3).head(SAMPLE_ROWS)
    lines = [
        "| source row | chat id | customer id | outcome | reason | detail |",
        "|---|---|---|---|---|---|",
    ]
    for row in sample.itertuples():
        detail = str(row.detail or "").replace("|", "/")[:80]
        lines.append(
            f"| {row.source_row} | {mask_identifier(row.chat_id)} | "
            f"{mask_identifier(row.customer_id)} | {row.outcome} | {row.reason} | {detail} |"
        )
    return MetadataValue.md("\n".join(lines))


def counts_table(title: str, counts: dict[str, int | float]) -> str:
    lines = [f"**{title}**", "", "| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value:,} |" for name, value in counts.items()]
    return "\n".join(lines)
