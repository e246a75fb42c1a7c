"""Sending one chunk: the request counted before it goes out, a lost answer sent once more, a
refused chunk split until the offenders stand alone, and the accepted chunk into the ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from dagster_project.core.db import utc_now
from dagster_project.core.esputnik import (
    EsputnikAmbiguousError,
    EsputnikClient,
    EsputnikError,
    EsputnikRejectedError,
    EsputnikTooLargeError,
    token_payload,
)
from dagster_project.core.held import MAX_SENDS, note_sends, undo_sends
from dagster_project.core.journal import LedgerJournal
from dagster_project.core.ledger import (
    ledger_rows,
    quarantine_token,
    record_chunk,
)
from dagster_project.core.locks import HeldLock
from dagster_project.core.pacing import RateLimiter
from dagster_project.core.push_types import (
    LedgerWriteError,
    PushLockLostError,
    PushOptions,
    PushReport,
    PushStoppedError,
    SystemicRefusalError,
    TokensInDoubtError,
)


class ChunkSender:
    """Sends chunks, bisecting refused ones, and records each outcome as it happens.

    Each row carries ``sends``: earlier requests carrying its token that got no usable answer.
    """

    def __init__(
        self,
        engine: Engine,
        client: EsputnikClient,
        batch_id: str,
        run_id: str,
        options: PushOptions,
        limiter: RateLimiter,
        report: PushReport,
        progress: Callable[[int], None],
        lock: HeldLock,
        journal: LedgerJournal,
        log: Callable[[str], None],
    ) -> None:
        self.engine, self.client, self.options = engine, client, options
        self.batch_id, self.run_id = batch_id, run_id
        self.limiter, self.report, self.progress = limiter, report, progress
        self.held_lock, self.journal, self.log = lock, journal, log
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.first_request_at: float | None = None
        # The ledger's COPY runs on the driver's own cursor: its errors come unwrapped.
        self.dbapi = engine.dialect.loaded_dbapi
        self.db_errors = (SQLAlchemyError, self.dbapi.Error)

    def deliver(self, chunk_no: int, rows: Sequence[dict]) -> None:
        doubtful = [row for row in rows if row["sends"] >= MAX_SENDS]
        if doubtful:
            with self.lock:
                self.report.tokens_in_doubt += len(doubtful)
                self.report.in_doubt.extend(row["token"] for row in doubtful)
        rows = [row for row in rows if row["sends"] < MAX_SENDS]
        if not rows:
            return
        ledger = ledger_rows(self.client.app_uuid, self.run_id, chunk_no, rows)
        tokens = [row["token"] for row in rows]
        self._before_request()
        # Every request is counted per token before it goes out and the count is taken back
        # with the ledger write: a run killed with a request open leaves its tokens counted, so
        # no later run can make a third copy.
        self._write(note_sends, self.engine, ledger, not any(row["sends"] for row in rows))
        try:
            self.client.post_tokens([token_payload(row) for row in rows])
        except EsputnikAmbiguousError as exc:
            first = [row["token"] for row in rows if not row["sends"]]
            self.log(
                f"chunk {chunk_no}: {exc}; "
                + (f"sending its {len(first):,} tokens once more" if first else "no more sends")
            )
            with self.lock:
                self.report.tokens_resent += len(first)
            self.deliver(chunk_no, [row | {"sends": row["sends"] + 1} for row in rows])
            return
        except (EsputnikRejectedError, EsputnikTooLargeError) as exc:
            self._write(undo_sends, self.engine, self.client.app_uuid, tokens)
            self._refused(chunk_no, rows, exc)
            return
        except EsputnikError:
            self._write(undo_sends, self.engine, self.client.app_uuid, tokens)
            raise
        self._record(chunk_no, ledger, tokens)
        with self.lock:
            self.report.tokens_pushed += len(rows)

    def _before_request(self) -> None:
        """Stop before sending when the push has stopped or its lock is gone."""
        if self.stopped.is_set():
            raise PushStoppedError("the push stopped; this chunk was not sent")
        with self.lock:
            held = self.held_lock.still_held()
        if not held:
            self.stopped.set()
            raise PushLockLostError(
                f"the push lock for app {self.client.app_uuid} was lost (its database "
                "connection ended); nothing more was sent, so a concurrent run cannot send the "
                "same tokens. Chunks accepted before this are in the ledger"
            )
        self.limiter.wait()
        with self.lock:
            self.report.requests_sent += 1
            if self.first_request_at is None:
                self.first_request_at = time.perf_counter()

    def _refused(self, chunk_no: int, rows: Sequence[dict], exc: EsputnikError) -> None:
        """Split a refused chunk; a token refused alone is quarantined with eSputnik's reason."""
        if len(rows) > 1:
            middle = len(rows) // 2
            self.deliver(chunk_no, rows[:middle])
            self.deliver(chunk_no, rows[middle:])
            return
        reason = getattr(exc, "reason", None) or str(exc)
        ids = (self.client.app_uuid, self.batch_id, self.run_id)
        self._write(quarantine_token, self.engine, *ids, rows[0], reason)
        with self.lock:
            self.report.tokens_quarantined += 1
            self.report.quarantined.append((rows[0]["token"], reason))
            refused, sent = self.report.tokens_quarantined, self.report.tokens_pushed
        sent += refused
        if (
            sent >= self.options.refused_min_tokens
            and refused / sent > self.options.max_refused_share
        ):
            self.stopped.set()
            raise SystemicRefusalError(
                f"eSputnik refused {refused:,} of the {sent:,} tokens sent this run "
                f"(over SYNC_MAX_REFUSED_SHARE={self.options.max_refused_share:g}), last with "
                f"{reason!r}: a refusal of everything, not of a few bad tokens. Those refused "
                "are quarantined (python -m dagster_project.release quarantine brings them back "
                "once the cause is fixed); the rest was not sent"
            )

    def _record(self, chunk_no: int, ledger: list[dict], resolved: list[str]) -> None:
        """The accepted chunk into the ledger: retried with backoff, else into the journal."""
        pushed_at = utc_now()
        wait_seconds = self.options.ledger_backoff_seconds
        for attempt in range(1, self.options.ledger_attempts + 1):
            try:
                record_chunk(self.engine, ledger, resolved, pushed_at=pushed_at)
                return
            except self.db_errors as exc:
                error = exc
                if attempt == self.options.ledger_attempts or not self._transient(exc):
                    break
                self.log(f"chunk {chunk_no}: ledger write failed ({first_line(exc)}); retrying")
                time.sleep(wait_seconds)
                wait_seconds *= 2
        self.stopped.set()
        what = (
            f"eSputnik accepted chunk {chunk_no} ({len(ledger):,} tokens) but the ledger write "
            f"failed {attempt} times ({first_line(error)})"
        )
        try:
            self.journal.keep(ledger, resolved, pushed_at)
        except OSError as journal_error:
            raise LedgerWriteError(
                f"{what}, and keeping it in the journal {self.journal.path} failed too "
                f"({journal_error}): the next run will send these tokens again"
            ) from None
        raise LedgerWriteError(
            f"{what}. The chunk is kept in the journal {self.journal.path}, which the next "
            "push records in the ledger before it sends anything; nothing more was sent"
        ) from None

    def _write(self, write: Callable[..., None], *args: object) -> None:
        """A state write of the push other than the ledger's, retried like it."""
        wait_seconds = self.options.ledger_backoff_seconds
        for attempt in range(1, self.options.ledger_attempts + 1):
            try:
                write(*args)
                return
            except self.db_errors as exc:
                if attempt == self.options.ledger_attempts or not self._transient(exc):
                    self.stopped.set()
                    raise PushStoppedError(
                        f"the state database refused {write.__name__} ({first_line(exc)}); "
                        "the push stopped"
                    ) from None
                time.sleep(wait_seconds)
                wait_seconds *= 2

    def _transient(self, exc: Exception) -> bool:
        """A failure the same write may get past: a lock, a lost connection, a restart."""
        return isinstance(exc, OperationalError | self.dbapi.OperationalError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        )

    def deliver_chunk(self, chunk_no: int, rows: Sequence[dict]) -> None:
        in_doubt_before = self.report.tokens_in_doubt
        self.deliver(chunk_no, rows)
        with self.lock:
            self.report.chunks_pushed += 1
            done = self.report.chunks_pushed
            in_doubt = self.report.tokens_in_doubt - in_doubt_before
        self.progress(done)
        if in_doubt:
            self.stopped.set()
            raise TokensInDoubtError(
                f"chunk {chunk_no}: eSputnik gave no usable answer to its resend either, so "
                f"{in_doubt:,} tokens may be stored twice; they are recorded in doubt "
                "(esputnik_token_in_doubt) and never sent again until released with "
                "python -m dagster_project.release in-doubt. The push stopped so that an "
                "eSputnik in trouble is not sent every chunk twice"
            )


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
