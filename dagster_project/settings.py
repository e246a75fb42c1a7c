"""Rules of the sync that are not about one outside system, each fed by its variable."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
from pydantic import Field

from dagster_project.core.extract_expectations import RawBounds
from dagster_project.core.push_types import PushOptions
from dagster_project.env import (
    EnvResource,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    SettingError,
    Share,
    env_field,
)


class SyncSettings(EnvResource):
    """Rules of the sync that are not about one outside system."""

    phone_default_region: str | None = env_field(
        "PHONE_DEFAULT_REGION", "UA", "region of numbers without a country code; empty: refuse them"
    )
    validate_chunk_rows: PositiveInt = env_field(
        "SYNC_VALIDATE_CHUNK_ROWS", 200_000, "rows validated at once; bounds the run's memory"
    )
    dry_run: bool = env_field("SYNC_DRY_RUN", False, "report what would be sent; send nothing")
    push_lock_wait_seconds: float = env_field(
        "SYNC_PUSH_LOCK_WAIT_SECONDS", 3600.0, "for a concurrent run's push"
    )
    max_no_identifier_share: Share = env_field(
        "SYNC_MAX_NO_IDENTIFIER_SHARE", 0.25, "before the push is blocked"
    )
    mass_change_multiple: PositiveFloat = env_field(
        "SYNC_MASS_CHANGE_MULTIPLE", 10.0, "of the recent average new tokens"
    )
    mass_change_min_tokens: int = env_field(
        "SYNC_MASS_CHANGE_MIN_TOKENS", 1000, "never blocked below this"
    )
    allow_mass_change: bool = env_field(
        "SYNC_ALLOW_MASS_CHANGE", False, "let a deliberate flood through"
    )
    max_refused_share: Share = env_field(
        "SYNC_MAX_REFUSED_SHARE",
        0.5,
        "of the tokens sent refused by eSputnik, before the push stops",
    )
    refused_min_tokens: PositiveInt = env_field(
        "SYNC_REFUSED_MIN_TOKENS", 100, "tokens sent before SYNC_MAX_REFUSED_SHARE applies"
    )
    journal_dir: str | None = env_field(
        "SYNC_JOURNAL_DIR",
        None,
        "for chunks eSputnik accepted that the ledger could not take; default: beside a "
        "SQLite state database, else ./.demo",
    )
    min_phone_share: Share = env_field(
        "SYNC_MIN_PHONE_SHARE", 0.5, "of the raw rows with a phone (CRM or bot), or the check warns"
    )
    min_email_share: Share = env_field(
        "SYNC_MIN_EMAIL_SHARE", 0.2, "of the raw rows with a CRM email, or the check warns"
    )
    max_quarantined_tokens: int = env_field(
        "SYNC_MAX_QUARANTINED_TOKENS", 50, "in one run before the check fails"
    )
    change_overlap_hours: PositiveFloat = env_field(
        "SYNC_CHANGE_OVERLAP_HOURS", 48.0, "separate state: how far before the last run to read"
    )
    full_scan_every_days: PositiveFloat = env_field(
        "SYNC_FULL_SCAN_EVERY_DAYS", 7.0, "separate state: how often a run reads every subscriber"
    )
    events_grace_hours: float = env_field(
        "SYNC_EVENTS_GRACE_HOURS", 48.0, "how far behind the cursor to re-read"
    )
    events_future_tolerance_minutes: NonNegativeFloat = env_field(
        "SYNC_EVENTS_FUTURE_TOLERANCE_MINUTES", 10.0, "events dated further past now are refused"
    )
    events_chunk_rows: PositiveInt = env_field(
        "SYNC_EVENTS_CHUNK_ROWS", 50_000, "message events read at once"
    )
    events_retention_days: PositiveInt = env_field(
        "SYNC_EVENTS_RETENTION_DAYS", 90, "processed and refused message events kept"
    )
    rejects_retention_days: PositiveInt = env_field(
        "SYNC_REJECTS_RETENTION_DAYS", 90, "rows of esputnik_sync_rejects kept"
    )
    quarantine_retention_days: PositiveInt = env_field(
        "SYNC_QUARANTINE_RETENTION_DAYS", 90, "a quarantined token is retried once this old"
    )
    blocked_rate_jump_multiple: float = env_field(
        "SYNC_BLOCKED_RATE_JUMP_MULTIPLE", 3.0, "of the 7-day average"
    )
    # Fixed by the rules, set only in code (tests): no variable.
    staging_retention_days: PositiveInt = 7
    mass_change_lookback_runs: PositiveInt = 14
    delivery_metrics_days: PositiveInt = 35
    blocked_rate_floor: float = Field(0.02, description="a blocked rate under it is never a jump")

    def check_settings(self) -> None:
        self.default_region()
        if self.events_retention_days < self.delivery_metrics_days or (
            self.events_retention_days * 24 <= self.events_grace_hours
        ):
            raise SettingError(
                f"SYNC_EVENTS_RETENTION_DAYS={self.events_retention_days} must cover the "
                f"{self.delivery_metrics_days} days of delivery metrics and "
                f"SYNC_EVENTS_GRACE_HOURS={self.events_grace_hours:g}"
            )

    def push_options(self, **sending: float) -> PushOptions:
        """The push's options: its guards from these settings, how to send (chunk size,
        requests in flight and per second) from the eSputnik resource that passes ``sending``."""
        return PushOptions(
            **sending,
            dry_run=self.dry_run,
            lock_wait_seconds=self.push_lock_wait_seconds,
            max_refused_share=self.max_refused_share,
            refused_min_tokens=self.refused_min_tokens,
            journal_dir=Path(self.journal_dir) if self.journal_dir else None,
        )

    def raw_bounds(self) -> RawBounds:
        """The shares the raw-extract check expects (see core/extract_expectations.py)."""
        return RawBounds(self.min_phone_share, self.min_email_share)

    def default_region(self) -> str | None:
        """The ISO region for phone numbers without a country code, or None to refuse them."""
        if not self.phone_default_region:
            return None
        region = self.phone_default_region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingError(
                f"PHONE_DEFAULT_REGION={self.phone_default_region!r} is not an ISO 3166 region code"
            )
        return region
