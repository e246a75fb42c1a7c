"""Split a batch's unpushed rows into token-complete buckets that fit in memory one at a time.

``validate_batch`` decides per token (latest status, richest row, duplicates), so all rows of a
token must be validated together; a bucket is every row whose token hashes to it. A batch that
fits in one bucket is read straight into memory. A larger one (a first sync of a big bot) is
streamed from the database once and spilled to one Arrow file per bucket in a temporary
directory, so the run holds one bucket at a time, never the whole batch.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine

from dagster_project.core.settled import tokens_of
from dagster_project.core.staging import (
    extract_frame,
    read_unpushed_extract,
    stream_unpushed_extract,
)


class SpillError(RuntimeError):
    """The bucket files could not be written (no space or no access in the temporary
    directory)."""


def bucket_count(rows: int, max_rows: int) -> int:
    """Buckets of about ``max_rows`` rows each for ``rows`` rows (at least one)."""
    return max(1, math.ceil(rows / max_rows))


def token_buckets(tokens: pd.Series, count: int) -> np.ndarray:
    """Bucket number of each row; equal tokens always get the same one."""
    return pd.util.hash_pandas_object(tokens, index=False).to_numpy() % count


def unpushed_buckets(
    engine: Engine, batch_id: str, app_uuid: str, count: int, recheck_ledger: bool = True
) -> Iterator[pd.DataFrame]:
    """The batch's unpushed rows in ``count`` token-complete buckets (empty ones skipped);
    ``recheck_ledger`` as in ``stream_unpushed_extract``.

    Spill files live in the system's temporary directory (``TMPDIR``), about 150 bytes a row,
    and are deleted when the iteration ends or is abandoned.
    """
    if count == 1:
        yield read_unpushed_extract(engine, batch_id, app_uuid, recheck_ledger)
        return
    spill = None
    try:
        spill = tempfile.TemporaryDirectory(prefix="esputnik-validate-")
        chunks = stream_unpushed_extract(engine, batch_id, app_uuid, recheck_ledger)
        paths = _spill(chunks, count, Path(spill.name))
    except OSError as exc:
        if spill is not None:
            spill.cleanup()
        raise SpillError(
            f"could not write the validation buckets to {tempfile.gettempdir()}: {exc}. "
            "Point TMPDIR at a disk with room (about 150 bytes a staged row) or raise "
            "SYNC_VALIDATE_CHUNK_ROWS so that the batch is validated in memory."
        ) from None
    with spill:
        for path in paths:
            yield _read_bucket(path)  # no local keeps it alive while the caller works on it


def _read_bucket(path: Path) -> pd.DataFrame:
    """One spilled bucket as a frame; its file is deleted once read."""
    with pa.OSFile(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    path.unlink()
    return extract_frame(table)


def _spill(chunks: Iterable[pa.Table], count: int, directory: Path) -> list[Path]:
    """Append each chunk's rows to their bucket's Arrow file; return the files written."""
    writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
    try:
        for chunk in chunks:
            chat_ids = extract_frame(chunk.select(["chat_id"]))["chat_id"]
            where = token_buckets(tokens_of(chat_ids), count)
            for number in np.unique(where):
                if number not in writers:
                    path = directory / f"{number}.arrow"
                    writers[number] = pa.ipc.new_file(str(path), chunk.schema)
                writers[number].write_table(chunk.filter(pa.array(where == number)))
    finally:
        for writer in writers.values():
            writer.close()
    return [directory / f"{number}.arrow" for number in sorted(writers)]
