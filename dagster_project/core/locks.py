"""A lock around the push that holds across processes and Dagster instances.

Two runs of the sync at once (a backfill during the nightly run) must not both send the same
token: the second waits here, then finds those tokens in the ledger. PostgreSQL uses a
session advisory lock and SQLite a file lock beside the database file; both vanish with the
process that holds them, so a killed run never leaves a stale lock behind.

A session lock also vanishes with its connection: a proxy's idle timeout, a server restart or a
transaction-mode pooler (which hands the session to others between statements) ends it
silently. The lock's connection therefore has TCP keepalives on both ends, and the push asks
``still_held()`` before each chunk.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

# libpq keepalives on the lock's own connection (a dead server is noticed in about a minute),
# and the server-side ones, so the server also notices a dead client and frees the lock.
CLIENT_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
SERVER_KEEPALIVES = (
    "SET tcp_keepalives_idle = 30",
    "SET tcp_keepalives_interval = 10",
    "SET tcp_keepalives_count = 3",
)
HELD_SQL = (
    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid::bigint = :high AND objid::bigint = :low"
    " AND objsubid = 1"
)


class PushLockTimeout(RuntimeError):
    """Another run held the push lock for longer than we were willing to wait."""


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64-bit) derived from a readable name."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class HeldLock:
    """The push lock while held; ``still_held()`` says whether it still is."""

    def __init__(self, check: Callable[[], bool] | None = None) -> None:
        self._check = check

    def still_held(self) -> bool:
        return self._check() if self._check else True


@contextlib.contextmanager
def push_lock(
    engine: Engine,
    app_uuid: str,
    wait_seconds: float,
    log: Callable[[str], None] = print,
    poll_seconds: float = 1.0,
) -> Iterator[HeldLock]:
    """Hold the app's push lock for the duration of the block."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        lock = _postgres_lock(engine, app_uuid)
    elif dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        lock = _file_lock(Path(engine.url.database).with_suffix(".push.lock"))
    else:
        log(f"no cross-process push lock for {dialect}; relying on the Dagster pool alone")
        yield HeldLock()
        return
    with lock as (try_acquire, still_held):
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
        yield HeldLock(still_held)


@contextlib.contextmanager
def _postgres_lock(engine: Engine, app_uuid: str) -> Iterator[tuple[Callable[[], bool], ...]]:
    key = advisory_key(f"esputnik-push:{app_uuid}")
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    holder = {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF}
    # A connection of its own, outside the engine's pool, with keepalives set at connect.
    lock_engine = create_engine(engine.url, poolclass=NullPool, connect_args=CLIENT_KEEPALIVES)
    try:
        with lock_engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in SERVER_KEEPALIVES:
                conn.execute(text(statement))
            held = False

            def try_acquire() -> bool:
                nonlocal held
                query = text("SELECT pg_try_advisory_lock(:key)")
                held = bool(conn.execute(query, {"key": key}).scalar())
                return held

            def still_held() -> bool:
                try:
                    return bool(conn.execute(text(HELD_SQL), holder).scalar())
                except SQLAlchemyError:  # the connection is gone, and the lock with it
                    return False

            try:
                yield try_acquire, still_held
            finally:
                if held:
                    with contextlib.suppress(SQLAlchemyError):
                        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        lock_engine.dispose()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[tuple[Callable[[], bool], ...]]:
    with path.open("a") as handle:

        def try_acquire() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            yield try_acquire, lambda: True  # a flock lasts as long as the process
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
