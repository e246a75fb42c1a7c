"""Send a batch's pending tokens to eSputnik chunk by chunk, recording each accepted chunk.

The ledger write of a chunk commits right after eSputnik accepts it, so a run that dies loses
nothing and resends at most the one chunk that was in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from dagster_project.core.esputnik import EsputnikClient, token_payload
from dagster_project.core.state import ledger_rows, pending_chunks, record_chunk


@dataclass
class PushReport:
    tokens_pushed: int = 0
    chunks_pushed: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_pushed / self.seconds if self.seconds else 0.0


def push_pending(
    engine: Engine,
    client: EsputnikClient,
    batch_id: str,
    run_id: str,
    chunk_size: int,
    log: Callable[[str], None] = print,
) -> PushReport:
    """Push what the ledger does not hold yet; raise on the first chunk that cannot be sent."""
    report = PushReport()
    started = time.perf_counter()
    chunks = list(pending_chunks(engine, batch_id, client.app_uuid, chunk_size))
    total = sum(len(c) for c in chunks)
    log(f"pushing {total} tokens in {len(chunks)} chunks of up to {chunk_size}")
    every = max(1, len(chunks) // 20)
    try:
        for number, rows in enumerate(chunks, start=1):
            ledger = ledger_rows(client.app_uuid, run_id, number, rows)
            client.post_tokens([token_payload(row) for row in rows])
            record_chunk(engine, ledger)
            report.tokens_pushed += len(rows)
            report.chunks_pushed += 1
            if number % every == 0 or number == len(chunks):
                log(f"chunk {number}/{len(chunks)} accepted: {report.tokens_pushed}/{total} tokens")
    finally:
        report.seconds = time.perf_counter() - started
    return report
