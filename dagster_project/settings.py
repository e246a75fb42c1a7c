"""Rules of the sync that are not about one outside system, each fed by its variable."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
from pydantic import Field

from dagster_project.core.extract_expectations import RawBounds
from dagster_project.core.push_types import PushOptions
from dagster_project.env import EnvResource, SettingError, env_field


class SyncSettings(EnvResource):
    """Rules of the sync that are not about one outside system."""

    phone_default_region: str | None = env_field(
        "PHONE_DEFAULT_REGION",
        "UA",
        description="region of numbers without a country code; empty: refuse such numbers",
    )
    staging_retention_days: int = Field(default=7, gt=0)
    validate_chunk_rows: int = env_field(
        "SYNC_VALIDATE_CHUNK_ROWS",
        200_000,
        description="rows validated at once; bounds the run's memory",
        gt=0,
    )
    dry_run: bool = env_field(
        "SYNC_DRY_RUN", False, description="report what would be sent; send nothing"
    )
    push_lock_wait_seconds: float = env_field(
        "SYNC_PUSH_LOCK_WAIT_SECONDS", 3600.0, description="for a concurrent run's push"
    )
    max_no_identifier_share: float = env_field(
        "SYNC_MAX_NO_IDENTIFIER_SHARE", 0.25, description="before the push is blocked"
    )
    mass_change_multiple: float = env_field(
        "SYNC_MASS_CHANGE_MULTIPLE", 10.0, description="of the recent average new tokens"
    )
    mass_change_min_tokens: int = env_field(
        "SYNC_MASS_CHANGE_MIN_TOKENS", 1000, description="never blocked below this"
    )
    mass_change_lookback_runs: int = Field(default=14, gt=0)
    allow_mass_change: bool = env_field(
        "SYNC_ALLOW_MASS_CHANGE", False, description="let a deliberate flood through"
    )
    max_refused_share: float = env_field(
        "SYNC_MAX_REFUSED_SHARE",
        0.5,
        description="of the tokens sent in a run refused by eSputnik, before the push stops",
        ge=0,
        le=1,
    )
    refused_min_tokens: int = env_field(
        "SYNC_REFUSED_MIN_TOKENS",
        100,
        description="tokens sent before SYNC_MAX_REFUSED_SHARE applies",
        gt=0,
    )
    journal_dir: str | None = env_field(
        "SYNC_JOURNAL_DIR",
        None,
        description=(
            "for chunks eSputnik accepted that the ledger could not take; default: beside a "
            "SQLite state database, else ./.demo"
        ),
    )
    min_phone_share: float = env_field(
        "SYNC_MIN_PHONE_SHARE",
        0.5,
        description="of the raw rows checked with a phone (CRM or bot), before the check warns",
        ge=0,
        le=1,
    )
    min_email_share: float = env_field(
        "SYNC_MIN_EMAIL_SHARE",
        0.2,
        description="of the raw rows checked with a CRM email, before the check warns",
        ge=0,
        le=1,
    )
    max_quarantined_tokens: int = env_field(
        "SYNC_MAX_QUARANTINED_TOKENS", 50, description="in one run before the check fails"
    )
    change_overlap_hours: float = env_field(
        "SYNC_CHANGE_OVERLAP_HOURS",
        48.0,
        description="separate state database: how far before the last run a change run reads",
        gt=0,
    )
    full_scan_every_days: float = env_field(
        "SYNC_FULL_SCAN_EVERY_DAYS",
        7.0,
        description="separate state database: a run reads every subscriber this often",
        gt=0,
    )
    events_grace_hours: float = env_field(
        "SYNC_EVENTS_GRACE_HOURS", 48.0, description="how far behind the cursor to re-read"
    )
    events_future_tolerance_minutes: float = env_field(
        "SYNC_EVENTS_FUTURE_TOLERANCE_MINUTES",
        10.0,
        description="events dated further past now are refused (clock skew allowance)",
        ge=0,
    )
    events_chunk_rows: int = env_field(
        "SYNC_EVENTS_CHUNK_ROWS", 50_000, description="message events read at once", gt=0
    )
    events_retention_days: int = env_field(
        "SYNC_EVENTS_RETENTION_DAYS",
        90,
        description="processed and refused message events kept",
        gt=0,
    )
    rejects_retention_days: int = env_field(
        "SYNC_REJECTS_RETENTION_DAYS", 90, description="rows of esputnik_sync_rejects kept", gt=0
    )
    quarantine_retention_days: int = env_field(
        "SYNC_QUARANTINE_RETENTION_DAYS",
        90,
        description="a quarantined token is retried once its entry is this old",
        gt=0,
    )
    delivery_metrics_days: int = Field(default=35, gt=0)
    blocked_rate_jump_multiple: float = env_field(
        "SYNC_BLOCKED_RATE_JUMP_MULTIPLE", 3.0, description="of the 7-day average"
    )
    blocked_rate_floor: float = Field(
        default=0.02, description="blocked rates under this never count as a jump"
    )

    def check_settings(self) -> None:
        self.default_region()
        if not 0 <= self.max_no_identifier_share <= 1:
            raise SettingError(
                f"SYNC_MAX_NO_IDENTIFIER_SHARE={self.max_no_identifier_share} must be 0 to 1"
            )
        if self.mass_change_multiple <= 0:
            raise SettingError(f"SYNC_MASS_CHANGE_MULTIPLE={self.mass_change_multiple} must be > 0")
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
