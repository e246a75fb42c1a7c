"""Send a batch's pending tokens to eSputnik chunk by chunk, recording each accepted chunk.

Guarantees, in order of importance:
- nothing is lost: a chunk is written to the ledger in its own transaction as soon as eSputnik
  accepts it, and a run that fails or dies leaves the rest for the next run;
- nothing is sent twice, except the chunks in flight when a run dies or whose response is lost
  (at most ``max_in_flight`` chunks, one by default);
- one bad token does not block its chunk: a 400 splits the chunk in halves until the offending
  tokens stand alone; those are quarantined with eSputnik's reason and the rest is sent.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from sqlalchemy import Engine

from dagster_project.core.esputnik import (
    EsputnikClient,
    EsputnikRejectedError,
    EsputnikTooLargeError,
    token_payload,
)
from dagster_project.core.locks import push_lock
from dagster_project.core.state import (
    count_pending,
    ledger_rows,
    pending_chunks,
    quarantine_token,
    record_chunk,
)

PROGRESS_SECONDS = 30.0


@dataclass(frozen=True)
class PushOptions:
    chunk_size: int
    max_in_flight: int = 1
    requests_per_second: float = 0.0  # 0 disables the client-side limit
    dry_run: bool = False
    lock_wait_seconds: float = 3600.0


@dataclass
class PushReport:
    tokens_pending: int = 0
    tokens_pushed: int = 0
    chunks_pushed: int = 0
    requests_sent: int = 0
    tokens_quarantined: int = 0
    seconds: float = 0.0
    sending_seconds: float = 0.0  # first request sent to last response received
    requests_per_second_limit: float = 0.0
    dry_run: bool = False
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    would_send: list[dict] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_pushed / self.seconds if self.seconds else 0.0

    @property
    def rate_limit_busy(self) -> float | None:
        """Requests sent per second over the configured limit: 1.0 means no slot was wasted."""
        return rate_limit_busy(
            self.requests_sent, self.sending_seconds, self.requests_per_second_limit
        )


def rate_limit_busy(requests: int, sending_seconds: float, limit: float) -> float | None:
    """Share of the rate limit's request slots used while sending (None without a limit).

    The limiter lets the first request go at once and spaces the others ``1 / limit`` apart,
    so a push that never leaves a slot unused takes ``(requests - 1) / limit`` seconds plus the
    last response: that is 100 %.
    """
    if not limit or requests < 2 or sending_seconds <= 0:
        return None
    return (requests - 1) / (sending_seconds * limit)


class RateLimiter:
    """Spaces request starts at least ``1 / per_second`` apart, across threads."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class Progress:
    """'chunk n/total done' lines: the last chunk's, and others at most every ``every`` seconds.

    Time, not a share of the chunks, sets the pace: a rate-limited push of hours still shows a
    line every half minute, and a push of seconds adds no more than its final line to the run's
    event log (each line is an event Dagster stores).
    """

    def __init__(
        self,
        total: int,
        report: PushReport,
        log: Callable[[str], None],
        every: float = PROGRESS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.report, self.log, self.every, self.clock = total, report, log, every, clock
        self._last = clock()
        self._lock = threading.Lock()

    def __call__(self, done: int) -> None:
        with self._lock:
            now = self.clock()
            if done != self.total and now - self._last < self.every:
                return
            self._last = now
        self.log(
            f"chunk {done}/{self.total} done: {self.report.tokens_pushed:,}/"
            f"{self.report.tokens_pending:,} tokens accepted"
        )


class _Delivery:
    """Sends chunks, bisecting refused ones, and records each outcome as it happens."""

    def __init__(
        self,
        engine: Engine,
        client: EsputnikClient,
        run_id: str,
        limiter: RateLimiter,
        report: PushReport,
        progress: Callable[[int], None],
    ) -> None:
        self.engine, self.client, self.run_id = engine, client, run_id
        self.limiter, self.report, self.progress = limiter, report, progress
        self.lock = threading.Lock()
        self.first_request_at: float | None = None

    def deliver(self, chunk_no: int, rows: Sequence[dict]) -> None:
        ledger = ledger_rows(self.client.app_uuid, self.run_id, chunk_no, rows)
        self.limiter.wait()
        with self.lock:
            self.report.requests_sent += 1
            if self.first_request_at is None:
                self.first_request_at = time.perf_counter()
        try:
            self.client.post_tokens([token_payload(row) for row in rows])
        except (EsputnikRejectedError, EsputnikTooLargeError) as exc:
            if len(rows) == 1:
                reason = getattr(exc, "reason", None) or str(exc)
                quarantine_token(self.engine, self.client.app_uuid, self.run_id, rows[0], reason)
                with self.lock:
                    self.report.tokens_quarantined += 1
                    self.report.quarantined.append((rows[0]["token"], reason))
                return
            middle = len(rows) // 2
            self.deliver(chunk_no, rows[:middle])
            self.deliver(chunk_no, rows[middle:])
            return
        record_chunk(self.engine, ledger)
        with self.lock:
            self.report.tokens_pushed += len(rows)

    def deliver_chunk(self, chunk_no: int, rows: Sequence[dict]) -> None:
        self.deliver(chunk_no, rows)
        with self.lock:
            self.report.chunks_pushed += 1
            done = self.report.chunks_pushed
        self.progress(done)


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
    first has already recorded its tokens and they are not sent again.
    """
    report = PushReport(
        dry_run=options.dry_run, requests_per_second_limit=options.requests_per_second
    )
    started = time.perf_counter()
    with (
        push_lock(engine, client.app_uuid, options.lock_wait_seconds, log),
        contextlib.closing(
            pending_chunks(engine, batch_id, client.app_uuid, options.chunk_size)
        ) as chunks,
    ):
        report.tokens_pending = count_pending(engine, batch_id, client.app_uuid)
        total = math.ceil(report.tokens_pending / options.chunk_size)
        if options.dry_run:
            report.would_send = next(chunks, [])[:10]
            log(f"dry run: would push {report.tokens_pending:,} tokens in {total} chunks")
            report.seconds = time.perf_counter() - started
            return report
        log(
            f"pushing {report.tokens_pending:,} tokens in {total} chunks of up to "
            f"{options.chunk_size}, {options.max_in_flight} in flight"
            + (
                f", {options.requests_per_second:g} requests/s"
                if options.requests_per_second
                else ""
            )
        )
        progress = Progress(total, report, log)
        delivery = _Delivery(
            engine, client, run_id, RateLimiter(options.requests_per_second), report, progress
        )
        try:
            _run_bounded(delivery, chunks, options.max_in_flight)
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
        running = set()
        for chunk_no, rows in pending:
            running.add(pool.submit(delivery.deliver_chunk, chunk_no, rows))
            if len(running) >= max_in_flight:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    if future.exception() is not None:
                        wait(running)  # let in-flight chunks land in the ledger first
                        raise future.exception()
        done, _ = wait(running)
        for future in done:
            if future.exception() is not None:
                raise future.exception()
