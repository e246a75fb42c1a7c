"""Send a batch's pending tokens to eSputnik chunk by chunk, recording each accepted chunk.

Guarantees, in order of importance:
- nothing is lost: a chunk is written to the ledger in its own transaction as soon as eSputnik
  accepts it (retried, else kept in a local journal replayed by the next push), and a run that
  fails or dies leaves the rest for the next run;
- no token is sent more than twice, over all runs: a request whose answer is lost (a read
  timeout, a dropped connection, 500/502/504) is counted per token in the state database, the
  chunk is sent once more, and a token whose second request is also lost is "in doubt": never
  sent again until someone releases it (``python -m dagster_project.release``). Every request
  is counted before it goes out, so a run killed with one open leaves its count behind;
- one bad token does not block its chunk: a 400 splits the chunk in halves until the offending
  tokens stand alone; those are quarantined with eSputnik's reason and the rest is sent. When
  eSputnik refuses more than ``max_refused_share`` of what it was sent, the refusal is systemic
  (a changed contract, a wrong app) and the push stops instead of quarantining everything;
- the push lock is verified before each chunk; a lost lock stops the push.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from dagster_project.core.esputnik import (
    EsputnikClient,
)
from dagster_project.core.journal import LedgerJournal, default_journal_dir
from dagster_project.core.ledger import (
    count_pending,
    pending_chunks,
)
from dagster_project.core.locks import push_lock
from dagster_project.core.pacing import Progress, RateLimiter
from dagster_project.core.push_types import (
    LedgerWriteError,
    PushOptions,
    PushReport,
    PushStoppedError,
)
from dagster_project.core.sender import ChunkSender, first_line


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
                f"in the ledger ({first_line(exc)}); nothing was sent, the journal is kept"
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
        delivery = ChunkSender(
            engine,
            client,
            batch_id,
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


def _run_bounded(delivery: ChunkSender, chunks: Iterator[list[dict]], max_in_flight: int) -> None:
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
