"""Send a batch's pending tokens to eSputnik chunk by chunk, recording each accepted chunk.

Guarantees, in order of importance:
- nothing is lost: a chunk is written to the ledger in its own transaction as soon as eSputnik
  accepts it (retried, else kept in a local journal replayed by the next push), and a run that
  fails or dies leaves the rest for the next run;
- no token is sent more than twice, over all runs: a request whose answer is lost (a read
  timeout, a dropped connection, 500/502/504) is counted per token in the state database, the
  chunk is sent once more, and a token whose second request is also lost is "in doubt": never
  sent again until someone releases it (``python -m dagster_project.release``). The one gap is a
  run killed with a first request open: the next run sends that chunk again, unaware;
- one bad token does not block its chunk: a 400 splits the chunk in halves until the offending
  tokens stand alone; those are quarantined with eSputnik's reason and the rest is sent. When
  eSputnik refuses more than ``max_refused_share`` of what it was sent, the refusal is systemic
  (a changed contract, a wrong app) and the push stops instead of quarantining everything;
- the push lock is verified before each chunk; a lost lock stops the push.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

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
from dagster_project.core.journal import LedgerJournal, default_journal_dir
from dagster_project.core.ledger import (
    count_pending,
    ledger_rows,
    pending_chunks,
    quarantine_token,
    record_chunk,
)
from dagster_project.core.locks import HeldLock, push_lock
from dagster_project.core.pacing import Progress, RateLimiter, rate_limit_busy


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


class _Delivery:
    """Sends chunks, bisecting refused ones, and records each outcome as it happens.

    Each row carries ``sends``: earlier requests carrying its token that got no usable answer.
    """

    def __init__(
        self,
        engine: Engine,
        client: EsputnikClient,
        run_id: str,
        options: PushOptions,
        limiter: RateLimiter,
        report: PushReport,
        progress: Callable[[int], None],
        lock: HeldLock,
        journal: LedgerJournal,
        log: Callable[[str], None],
    ) -> None:
        self.engine, self.client, self.run_id, self.options = engine, client, run_id, options
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
        self._write(note_sends, self.engine, ledger)
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
        self._write(
            quarantine_token, self.engine, self.client.app_uuid, self.run_id, rows[0], reason
        )
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
                self.log(f"chunk {chunk_no}: ledger write failed ({_first_line(exc)}); retrying")
                time.sleep(wait_seconds)
                wait_seconds *= 2
        self.stopped.set()
        what = (
            f"eSputnik accepted chunk {chunk_no} ({len(ledger):,} tokens) but the ledger write "
            f"failed {attempt} times ({_first_line(error)})"
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
                        f"the state database refused {write.__name__} ({_first_line(exc)}); "
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


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def push_pending(
    engine: Engine,
    client: EsputnikClient,
    batch_id: str,
    run_id: str,
    options: PushOptions,
    log: Callable[[str], None] = print,
) -> PushReport:
    """Push what the ledger does not hold yet; raise on the first chunk that cannot be sent.

    The pending set is read under the app's push lock, so a concurrent run that got there
    first has already recorded its tokens and they are not sent again. Chunks an earlier push
    left in the journal go to the ledger first. A ``PushStoppedError`` carries the report.
    """
    report = PushReport(
        dry_run=options.dry_run, requests_per_second_limit=options.requests_per_second
    )
    journal = LedgerJournal(options.journal_dir or default_journal_dir(engine), client.app_uuid)
    started = time.perf_counter()
    with push_lock(engine, client.app_uuid, options.lock_wait_seconds, log) as lock:
        if options.dry_run:
            if journal.path.exists():
                log(f"dry run: the journal {journal.path} waits to be recorded in the ledger")
            report.tokens_pending = count_pending(engine, batch_id, client.app_uuid)
            report.would_send = next(
                pending_chunks(engine, batch_id, client.app_uuid, options.chunk_size), []
            )[:10]
            total = math.ceil(report.tokens_pending / options.chunk_size)
            log(f"dry run: would push {report.tokens_pending:,} tokens in {total} chunks")
            report.seconds = time.perf_counter() - started
            return report
        try:
            report.tokens_from_journal = journal.replay(engine, log)
        except SQLAlchemyError as exc:
            raise LedgerWriteError(
                f"the journal {journal.path} of chunks eSputnik accepted could not be recorded "
                f"in the ledger ({_first_line(exc)}); nothing was sent, the journal is kept"
            ) from None
        report.tokens_pending = count_pending(engine, batch_id, client.app_uuid)
        total = math.ceil(report.tokens_pending / options.chunk_size)
        log(
            f"pushing {report.tokens_pending:,} tokens in {total} chunks of up to "
            f"{options.chunk_size}, {options.max_in_flight} in flight"
            + (
                f", {options.requests_per_second:g} requests/s"
                if options.requests_per_second
                else ""
            )
        )
        delivery = _Delivery(
            engine,
            client,
            run_id,
            options,
            RateLimiter(options.requests_per_second),
            report,
            Progress(total, report, log),
            lock,
            journal,
            log,
        )
        chunks = pending_chunks(engine, batch_id, client.app_uuid, options.chunk_size)
        try:
            _run_bounded(delivery, chunks, options.max_in_flight)
        except PushStoppedError as exc:
            exc.report = report
            raise
        finally:
            finished = time.perf_counter()
            report.seconds = finished - started
            if delivery.first_request_at is not None:
                report.sending_seconds = finished - delivery.first_request_at
    return report


def _run_bounded(delivery: _Delivery, chunks: Iterator[list[dict]], max_in_flight: int) -> None:
    """Deliver chunks with at most ``max_in_flight`` requests open; stop at the first error."""
    pending = iter(enumerate(chunks, start=1))
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="push") as pool:
        running: set[Future] = set()
        for chunk_no, rows in pending:
            running.add(pool.submit(delivery.deliver_chunk, chunk_no, rows))
            if len(running) >= max_in_flight:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                if any(future.exception() is not None for future in done):
                    delivery.stopped.set()
                    done |= wait(running).done  # let in-flight chunks land in the ledger first
                    _raise_cause(done)
        _raise_cause(wait(running).done)


def _raise_cause(done: set[Future]) -> None:
    """Raise the error that stopped the push, not a chunk's "the push stopped" that followed."""
    errors = [future.exception() for future in done if future.exception() is not None]
    if errors:
        raise next((e for e in errors if type(e) is not PushStoppedError), errors[0])
