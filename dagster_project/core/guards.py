"""Circuit breakers that stop a push before it does damage eSputnik cannot undo."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    passed: bool
    description: str
    metadata: dict[str, float | int | str]


def identifier_completeness(
    no_identifier_rows: int, candidate_rows: int, max_share: float
) -> Verdict:
    """Fail when too many active subscribers of the range have no identifier to send.

    A broken join (CRM table empty, renamed key) shows up as a night of anonymous subscribers;
    pushing what is left of them would create contacts that can never be merged.
    ``candidate_rows`` counts active subscribers with a token, pushed before or not, so the
    share is the same on a first run and on every rerun of the range.
    """
    share = no_identifier_rows / candidate_rows if candidate_rows else 0.0
    passed = share <= max_share
    description = (
        f"{share:.1%} of {candidate_rows:,} active subscribers have no identifier "
        f"(limit {max_share:.0%})"
    )
    if not passed:
        description += ": the push is blocked; check the CRM join and the extract query"
    return Verdict(
        passed,
        description,
        {"share_without_identifier": round(share, 4), "max_share": max_share},
    )


def mass_change(
    new_tokens: int,
    recent_new_tokens: Sequence[int],
    max_multiple: float,
    min_tokens: int,
    overridden: bool,
) -> Verdict:
    """Fail when a run would push far more new tokens than recent runs did.

    A replayed or truncated-and-reloaded table looks like a flood of new subscribers. Below
    ``min_tokens`` nothing is blocked, and without history (the initial load) neither.
    """
    baseline = sum(recent_new_tokens) / len(recent_new_tokens) if recent_new_tokens else None
    limit = max(min_tokens, max_multiple * baseline) if baseline is not None else None
    metadata: dict[str, float | int | str] = {
        "tokens_new": new_tokens,
        "recent_runs": len(recent_new_tokens),
        "recent_average": round(baseline, 1) if baseline is not None else -1,
        "limit": round(limit, 1) if limit is not None else -1,
    }
    if limit is None:
        return Verdict(True, f"{new_tokens:,} new tokens; no earlier runs to compare", metadata)
    if new_tokens <= limit:
        return Verdict(True, f"{new_tokens:,} new tokens, within {limit:,.0f}", metadata)
    if overridden:
        return Verdict(
            True,
            f"{new_tokens:,} new tokens exceed {limit:,.0f} but the guard was overridden",
            metadata,
        )
    return Verdict(
        False,
        f"{new_tokens:,} new tokens exceed {limit:,.0f} ({max_multiple:g}x the average "
        f"{baseline:,.0f} of the last {len(recent_new_tokens)} runs): the push is blocked. For a "
        "deliberate backfill set SYNC_ALLOW_MASS_CHANGE=true or tag the run "
        "esputnik_sync/allow_mass_change=true",
        metadata,
    )
