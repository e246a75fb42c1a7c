"""What a push is told (``PushOptions``), what it did (``PushReport``), and why it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.core.esputnik import (
    EsputnikError,
)
from dagster_project.core.pacing import rate_limit_busy


@dataclass(frozen=True)
class PushOptions:
    chunk_size: int
    max_in_flight: int = 1
    requests_per_second: float = 0.0  # 0 disables the client-side limit
    dry_run: bool = False
    lock_wait_seconds: float = 3600.0
    max_refused_share: float = 0.5  # of the tokens sent this run, before the push stops
    refused_min_tokens: int = 100  # tokens sent before that share counts
    ledger_attempts: int = 5  # tries of one ledger write before the chunk goes to the journal
    ledger_backoff_seconds: float = 0.5  # doubled after each failed try
    journal_dir: Path | None = None  # default: core.journal.default_journal_dir


@dataclass
class PushReport:
    tokens_pending: int = 0
    tokens_pushed: int = 0
    chunks_pushed: int = 0
    requests_sent: int = 0
    tokens_quarantined: int = 0
    tokens_resent: int = 0  # sent a second time after a lost answer
    tokens_in_doubt: int = 0  # put in doubt by this run (see core/held.py)
    tokens_from_journal: int = 0  # accepted by an earlier run, recorded from its journal
    seconds: float = 0.0
    sending_seconds: float = 0.0  # first request sent to last response received
    requests_per_second_limit: float = 0.0
    dry_run: bool = False
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    in_doubt: list[str] = field(default_factory=list)
    would_send: list[dict] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_pushed / self.seconds if self.seconds else 0.0

    def run_counters(self) -> dict[str, float]:
        """The push's columns of ``esputnik_sync_runs``."""
        return {
            "tokens_pushed": self.tokens_pushed,
            "tokens_quarantined": self.tokens_quarantined,
            "chunks_pushed": self.chunks_pushed,
            "requests_sent": self.requests_sent,
            "push_seconds": self.seconds,
            "sending_seconds": self.sending_seconds,
            "requests_per_second_limit": self.requests_per_second_limit,
        }

    @property
    def rate_limit_busy(self) -> float | None:
        """Requests sent per second over the configured limit: 1.0 means no slot was wasted."""
        return rate_limit_busy(
            self.requests_sent, self.sending_seconds, self.requests_per_second_limit
        )


class PushStoppedError(EsputnikError):
    """The push stopped itself to keep its guarantees; the message says what became of the
    chunk involved. ``report`` holds what the push did until then."""

    report: PushReport | None = None


class LedgerWriteError(PushStoppedError):
    """eSputnik accepted a chunk but the ledger would not take it, even after retries."""


class PushLockLostError(PushStoppedError):
    """The push lock vanished mid-push (its connection died): another run may be sending."""


class TokensInDoubtError(PushStoppedError):
    """A chunk's resend got no usable answer either: its tokens are in doubt."""


class SystemicRefusalError(PushStoppedError):
    """eSputnik refused too large a share of the tokens sent: not a few bad tokens."""
