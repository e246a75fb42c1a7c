"""What a person sees of each sync step: numeric metadata under stable keys (the UI plots them
across runs), the tables of metadata_tables.py, and the check results."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, MaterializeResult

from dagster_project.core.extract_expectations import RawCheck
from dagster_project.core.guards import Verdict
from dagster_project.metadata_tables import (
    counts,
    expectations_table,
    payload_sample,
    quarantine_sample,
    rejects_sample,
    sample_text,
)
from dagster_project.step_reports import DiffReport, ExtractReport, PushStepReport, ValidateReport

# Check names (the UI and scripts know them by these).
PAYLOAD_CHECK = "payload_contract"
COMPLETENESS_CHECK = "identifier_completeness"
MASS_CHANGE_CHECK = "mass_change_guard"
LEDGER_CHECK = "ledger_no_duplicates"
QUARANTINE_CHECK = "push_quarantine"
IN_DOUBT_CHECK = "tokens_in_doubt"
TIMESTAMPS_CHECK = "subscriber_timestamps"
RAW_CHECK = "raw_extract_expectations"


def count_result(
    check_name: str,
    count: int,
    description: str,
    limit: int = 0,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    **metadata: int,
) -> AssetCheckResult:
    """A check that a count of things gone wrong stays within ``limit``; ``metadata`` carries
    the count under the name the UI plots it by, and a limit other than 0 beside it."""
    return AssetCheckResult(
        check_name=check_name,
        passed=count <= limit,
        severity=severity,
        description=description,
        metadata={**metadata, "limit": limit} if limit else metadata,
    )


def verdict_result(check_name: str, verdict: Verdict, **extra: float) -> AssetCheckResult:
    """A guard's verdict as an ERROR-severity check result (blocking where declared so)."""
    return AssetCheckResult(
        check_name=check_name,
        passed=verdict.passed,
        severity=AssetCheckSeverity.ERROR,
        description=verdict.description,
        metadata={**verdict.metadata, **extra},
    )


def raw_extract_result(raw: RawCheck) -> AssetCheckResult:
    """The raw-extract suite as a WARN check: drift to look into, never a reason to stop."""
    outcome, bounds = raw.outcome, raw.bounds
    unexpected = {e.column: e.unexpected_count for e in outcome.expectations}
    failed = "; ".join(
        f"{e.name}({e.column}): {e.unexpected_count} of {raw.rows} rows"
        + (f" (sample: {sample_text(e.unexpected_values[:5])})" if e.unexpected_values else "")
        for e in outcome.failed
    )
    shares = {
        f"{column}_share": round(1 - unexpected[column] / raw.rows, 4)
        for column in ("phone", "email")
        if raw.rows
    }
    return AssetCheckResult(
        check_name=RAW_CHECK,
        passed=outcome.success,
        severity=AssetCheckSeverity.WARN,
        description=f"failed expectations: {failed}"
        if failed
        else f"every expectation holds over {raw.rows} raw rows",
        metadata={
            "rows_checked": raw.rows,
            "expectations_evaluated": len(outcome.expectations),
            "expectations_failed": len(outcome.failed),
            **{f"unexpected_{column}": n for column, n in unexpected.items()},
            **shares,
            "min_phone_share": bounds.min_phone_share,
            "min_email_share": bounds.min_email_share,
            "check_seconds": round(raw.seconds, 3),
            "failed_expectations": expectations_table(outcome.failed),
        },
    )


def extract_result(report: ExtractReport) -> MaterializeResult:
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
            count_result(
                TIMESTAMPS_CHECK,
                report.unreadable_timestamps,
                f"{report.unreadable_timestamps} subscriber rows have timestamps SQLite cannot "
                "compare (not 'YYYY-MM-DD HH:MM:SS' UTC text); no run reads them"
                if report.unreadable_timestamps
                else "every subscriber timestamp is comparable",
                rows=report.unreadable_timestamps,
            ),
        ],
    )


def validate_result(report: ValidateReport) -> MaterializeResult:
    v, coverage = report.validation, report.coverage
    suite = v.suite
    failed = ", ".join(f"{e.name}({e.column}): {e.unexpected_count}" for e in suite.failed)
    reject_counts, drop_counts = dict(v.reject_counts), dict(v.drop_counts)
    return MaterializeResult(
        metadata={
            "dagster/row_count": v.rows["valid"],
            "rows_extracted": int(coverage["rows_extracted"]),
            "rows_already_pushed": report.already_pushed,
            "rows_settled": v.rows["settled"],
            "rows_validated": v.rows["validated"],
            "rows_valid": v.rows["valid"],
            "rows_rejected": sum(reject_counts.values()),
            "identifiers_dropped": sum(drop_counts.values()),
            **{f"rejected_{k}": n for k, n in reject_counts.items()},
            **{f"dropped_{k}": n for k, n in drop_counts.items()},
            "validate_seconds": round(report.seconds, 3),
            "gx_seconds": round(v.gx_seconds, 3),
            "gx_import_seconds": round(v.gx_import_seconds, 3),
            **{
                f"validate_{k.replace(' ', '_')}_seconds": round(s, 3) for k, s in v.seconds.items()
            },
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
                    "rows_checked": v.rows["valid"],
                    "chunks": v.chunks,
                },
            ),
            raw_extract_result(v.raw),
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


def diff_result(report: DiffReport) -> MaterializeResult:
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


def push_result(step: PushStepReport) -> MaterializeResult:
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
            count_result(
                LEDGER_CHECK,
                step.duplicates,
                f"{step.duplicates} live tokens recorded more than once",
                duplicated_tokens=step.duplicates,
            ),
            count_result(
                QUARANTINE_CHECK,
                quarantined,
                f"{quarantined} tokens quarantined this run (limit {step.max_quarantined}); "
                "see esputnik_token_quarantine",
                limit=step.max_quarantined,
                tokens_quarantined=quarantined,
            ),
            count_result(
                IN_DOUBT_CHECK,
                step.in_doubt,
                f"{step.in_doubt} tokens of the app are in doubt (eSputnik may hold two "
                "copies); release them with python -m dagster_project.release in-doubt",
                severity=AssetCheckSeverity.WARN,
                tokens_in_doubt=step.in_doubt,
            ),
        ],
    )
