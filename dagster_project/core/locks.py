"""A lock around the push that holds across processes and Dagster instances.

Two runs of the sync at once (a backfill during the nightly run) must not both send the same
token: the second waits here, then finds those tokens in the ledger. PostgreSQL uses a
session advisory lock and SQLite a file lock beside the database file; both vanish with the
process that holds them, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Engine, text


class PushLockTimeout(RuntimeError):
    """Another run held the push lock for longer than we were willing to wait."""


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64-bit) derived from a readable name."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def push_lock(
    engine: Engine,
    app_uuid: str,
    wait_seconds: float,
    log: Callable[[str], None] = print,
    poll_seconds: float = 1.0,
) -> Iterator[None]:
    """Hold the app's push lock for the duration of the block."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        lock = _postgres_lock(engine, app_uuid)
    elif dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        lock = _file_lock(Path(engine.url.database).with_suffix(".push.lock"))
    else:
        log(f"no cross-process push lock for {dialect}; relying on the Dagster pool alone")
        yield
        return
    with lock as try_acquire:
        deadline = time.monotonic() + wait_seconds
        announced = False
        while not try_acquire():
            if time.monotonic() > deadline:
                raise PushLockTimeout(
                    f"another run held the push lock for app {app_uuid} for over "
                    f"{wait_seconds:.0f}s; nothing was sent"
                )
            if not announced:
                log("another run is pushing to this app; waiting for its lock")
                announced = True
            time.sleep(poll_seconds)
        if announced:
            log("push lock acquired")
        yield


@contextlib.contextmanager
def _postgres_lock(engine: Engine, app_uuid: str) -> Iterator[Callable[[], bool]]:
    key = advisory_key(f"esputnik-push:{app_uuid}")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        held = False

        def try_acquire() -> bool:
            nonlocal held
            held = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            )
            return held

        try:
            yield try_acquire
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[Callable[[], bool]]:
    with path.open("a") as handle:

        def try_acquire() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            yield try_acquire
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
