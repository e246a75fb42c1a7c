"""What each sync step reports back: the figures reporting.py turns into metadata and check
results, kept apart from the steps so that both sides read one definition."""

from __future__ import annotations

from dataclasses import dataclass

from dagster_project.core.guards import Verdict
from dagster_project.core.push_types import PushReport
from dagster_project.core.scope import Scope
from dagster_project.core.validation import ValidationReport


@dataclass
class ExtractReport:
    scope: Scope
    coverage: dict[str, int]
    staged: int
    seconds: float
    batch_id: str
    unreadable_timestamps: int = 0  # rows no window can place (SQLite, reference schema)


@dataclass
class ValidateReport:
    validation: ValidationReport
    coverage: dict[str, object]
    completeness: Verdict
    seconds: float

    @property
    def already_pushed(self) -> int:
        return int(self.coverage["rows_extracted"]) - self.validation.rows["unpushed"]

    def log_line(self) -> str:
        """The step's one log line: where the rows went and where the time went."""
        v = self.validation
        rejected = sum(v.reject_counts.values())
        reasons = ", ".join(f"{k}={n}" for k, n in v.reject_counts.items() if n) or "none"
        phases = ", ".join(f"{k} {s:.1f}s" for k, s in v.seconds.items())
        return (
            f"{int(self.coverage['rows_extracted']):,} rows, {self.already_pushed:,} with a "
            f"token already pushed, {v.rows['settled']:,} refused before and unchanged since; "
            f"of the other {v.rows['validated']:,}: {v.rows['valid']:,} valid, {rejected:,} "
            f"rejected ({reasons}), {sum(v.drop_counts.values()):,} identifiers dropped; "
            f"{self.seconds:.1f}s ({phases}, GX import {v.gx_import_seconds:.1f}s, "
            f"GX suite {v.gx_seconds:.1f}s)"
        )


@dataclass
class DiffReport:
    valid: int
    new: int
    held_back: int
    flood: Verdict
    seconds: float

    @property
    def already_pushed(self) -> int:
        return self.valid - self.new - self.held_back


@dataclass
class PushStepReport:
    push: PushReport
    duplicates: int
    in_doubt: int
    chunk_size: int
    max_quarantined: int
