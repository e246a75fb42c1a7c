"""What a person sees of each step: numeric metadata under stable keys (the UI plots them across
runs), typed tables (rendered as tables, not markdown), and the check results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
)

from dagster_project.core.guards import Verdict
from dagster_project.core.masking import mask_email, mask_phone
from dagster_project.core.validation import REJECTS_PER_REASON

SAMPLE_ROWS = 10

# Check names (the UI and scripts know them by these).
PAYLOAD_CHECK = "payload_contract"
COMPLETENESS_CHECK = "identifier_completeness"
MASS_CHANGE_CHECK = "mass_change_guard"
LEDGER_CHECK = "ledger_no_duplicates"
QUARANTINE_CHECK = "push_quarantine"
IN_DOUBT_CHECK = "tokens_in_doubt"
TIMESTAMPS_CHECK = "subscriber_timestamps"


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
    "chat_id": ("string", "masked"),
    "customer_id": ("string", "masked"),
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
    columns = {"token": ("string", "masked"), "reason": ("string", "eSputnik's reason")}
    rows = [
        {
            "token": mask_identifier(token),
            "reason": reason.replace(token, mask_identifier(token))[:120],
        }
        for token, reason in quarantined[:SAMPLE_ROWS]
    ]
    return table(columns, rows)


PAYLOAD_COLUMNS = {
    name: ("string", "masked")
    for name in ("token", "contact_id", "external_customer_id", "phone", "email")
}


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


def verdict_result(check_name: str, verdict: Verdict, **extra: float) -> AssetCheckResult:
    """A guard's verdict as an ERROR-severity check result (blocking where declared so)."""
    return AssetCheckResult(
        check_name=check_name,
        passed=verdict.passed,
        severity=AssetCheckSeverity.ERROR,
        description=verdict.description,
        metadata={**verdict.metadata, **extra},
    )


def extract_result(report) -> MaterializeResult:
    rows = report.coverage["rows_extracted"]
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "rows_extracted": rows,
            "rows_staged": report.staged,
            "active_rows": report.coverage["active_rows"],
            "extract_seconds": round(report.seconds, 3),
            "scope": report.scope.kind,
            "scope_description": report.scope.describe(),
            "rows_unreadable_timestamps": report.unreadable_timestamps,
            "batch_id": report.batch_id,
        },
        check_results=[
            AssetCheckResult(
                check_name=TIMESTAMPS_CHECK,
                passed=report.unreadable_timestamps == 0,
                severity=AssetCheckSeverity.ERROR,
                description=(
                    f"{report.unreadable_timestamps} subscriber rows have timestamps SQLite "
                    "cannot compare (not 'YYYY-MM-DD HH:MM:SS' UTC text); no run reads them"
                    if report.unreadable_timestamps
                    else "every subscriber timestamp is comparable"
                ),
                metadata={"rows": report.unreadable_timestamps},
            )
        ],
    )


def validate_result(report) -> MaterializeResult:
    v, coverage = report.validation, report.coverage
    suite = v.suite
    failed = ", ".join(f"{e.name}({e.column}): {e.unexpected_count}" for e in suite.failed)
    reject_counts, drop_counts = dict(v.reject_counts), dict(v.drop_counts)
    return MaterializeResult(
        metadata={
            "dagster/row_count": v.rows_valid,
            "rows_extracted": int(coverage["rows_extracted"]),
            "rows_already_pushed": report.already_pushed,
            "rows_settled": v.rows_settled,
            "rows_validated": v.rows_validated,
            "rows_valid": v.rows_valid,
            "rows_rejected": sum(reject_counts.values()),
            "identifiers_dropped": sum(drop_counts.values()),
            **{f"rejected_{k}": n for k, n in reject_counts.items()},
            **{f"dropped_{k}": n for k, n in drop_counts.items()},
            "validate_seconds": round(report.seconds, 3),
            "gx_seconds": round(v.gx_seconds, 3),
            "phone_engine": v.phone_engine or "none needed",
            "rejects_by_reason": counts(reject_counts, "why the row was not sent"),
            "dropped_by_reason": counts(drop_counts, "why the identifier was left out"),
            "rejects_sample": rejects_sample(v.rejects_sample),
        },
        check_results=[
            AssetCheckResult(
                check_name=PAYLOAD_CHECK,
                passed=suite.success,
                severity=AssetCheckSeverity.ERROR,
                description=None if suite.success else f"failed expectations: {failed}",
                metadata={
                    "expectations_evaluated": len(suite.expectations),
                    "expectations_failed": len(suite.failed),
                    "rows_checked": v.rows_valid,
                    "chunks": v.chunks,
                },
            ),
            verdict_result(
                COMPLETENESS_CHECK,
                report.completeness,
                active_rows=coverage["active_rows"],
                share_without_crm_link=round(
                    coverage["rows_without_crm_link"] / max(coverage["active_rows"], 1), 4
                ),
            ),
        ],
    )


def diff_result(report) -> MaterializeResult:
    return MaterializeResult(
        check_results=[verdict_result(MASS_CHANGE_CHECK, report.flood)],
        metadata={
            "dagster/row_count": report.new,
            "tokens_valid": report.valid,
            "tokens_already_pushed": report.already_pushed,
            "tokens_quarantine_skipped": report.held_back,
            "tokens_new": report.new,
            "diff_seconds": round(report.seconds, 3),
        },
    )


def push_result(step) -> MaterializeResult:
    report = step.push
    quarantined = report.tokens_quarantined
    return MaterializeResult(
        metadata={
            "dagster/row_count": report.tokens_pushed,
            "dry_run": report.dry_run,
            "tokens_pending": report.tokens_pending,
            "tokens_pushed": report.tokens_pushed,
            "tokens_quarantined": quarantined,
            "tokens_resent": report.tokens_resent,
            "tokens_in_doubt": report.tokens_in_doubt,
            "tokens_from_journal": report.tokens_from_journal,
            "chunks_pushed": report.chunks_pushed,
            "requests_sent": report.requests_sent,
            "push_seconds": round(report.seconds, 3),
            "tokens_per_second": round(report.tokens_per_second, 1),
            "sending_seconds": round(report.sending_seconds, 3),
            **(
                {"rate_limit_busy": round(report.rate_limit_busy, 3)}
                if report.rate_limit_busy is not None
                else {}
            ),
            "chunk_size": step.chunk_size,
            "quarantined_sample": quarantine_sample(report.quarantined),
            **({"would_send_sample": payload_sample(report.would_send)} if report.dry_run else {}),
        },
        check_results=[
            AssetCheckResult(
                check_name=LEDGER_CHECK,
                passed=step.duplicates == 0,
                severity=AssetCheckSeverity.ERROR,
                description=f"{step.duplicates} live tokens recorded more than once",
                metadata={"duplicated_tokens": step.duplicates},
            ),
            AssetCheckResult(
                check_name=QUARANTINE_CHECK,
                passed=quarantined <= step.max_quarantined,
                severity=AssetCheckSeverity.ERROR,
                description=(
                    f"{quarantined} tokens quarantined this run (limit {step.max_quarantined}); "
                    "see esputnik_token_quarantine"
                ),
                metadata={"tokens_quarantined": quarantined, "limit": step.max_quarantined},
            ),
            AssetCheckResult(
                check_name=IN_DOUBT_CHECK,
                passed=step.in_doubt == 0,
                severity=AssetCheckSeverity.WARN,
                description=(
                    f"{step.in_doubt} tokens of the app are in doubt (eSputnik may hold two "
                    "copies); release them with python -m dagster_project.release in-doubt"
                ),
                metadata={"tokens_in_doubt": step.in_doubt},
            ),
        ],
    )
