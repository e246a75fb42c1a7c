"""Throw-away warehouses for the bench: create, bulk-load generated rows, inspect, drop.

Loading goes around SQLAlchemy's per-row binding: one ``executemany`` in a single transaction
on SQLite (WAL, synchronous=OFF while loading), ``COPY`` on PostgreSQL. That keeps seeding
millions of rows well below the time of the run being measured.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bench.datagen import CONTACT_COLUMNS, SUBSCRIBER_COLUMNS, Batch
from dagster_project.core.run_history import RUN_COUNTERS
from dagster_project.warehouse_seed import create_warehouse_schema

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
COPY_ROWS = 500_000

RUN_COLUMNS = ("run_id", "started_at", "finished_at", *RUN_COUNTERS)


@dataclass
class Warehouse:
    """One bench database: its SQLAlchemy URL and how to get rid of it."""

    backend: str
    url: str
    admin_url: str | None = None
    path: Path | None = None

    def engine(self) -> Engine:
        return create_engine(self.url)

    def drop(self) -> None:
        """Delete the file or database; the bench leaves nothing behind."""
        if self.backend == "sqlite" and self.path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.path.with_suffix(".push.lock").unlink(missing_ok=True)
            return
        if self.admin_url:
            drop_database(self.admin_url, self.url)


def create_database(admin_url: str, prefix: str) -> str:
    """A new, empty PostgreSQL database named ``prefix`` plus a random suffix; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}".lower()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def create(backend: str, workdir: Path, label: str, postgres_admin_url: str) -> Warehouse:
    """A fresh, empty warehouse with the reference schema."""
    if backend == "sqlite":
        path = workdir / f"{label}.sqlite"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        warehouse = Warehouse("sqlite", f"sqlite:///{path}", path=path)
    elif backend == "postgres":
        url = create_database(postgres_admin_url, f"esputnik_bench_{label}")
        warehouse = Warehouse("postgres", url, admin_url=postgres_admin_url)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    engine = warehouse.engine()
    create_warehouse_schema(engine)
    engine.dispose()
    return warehouse


def load(warehouse: Warehouse, batch: Batch) -> None:
    """Append a generated batch to the warehouse tables."""
    if warehouse.backend == "sqlite":
        assert warehouse.path is not None
        _load_sqlite(warehouse.path, batch)
    else:
        _load_postgres(warehouse.url, batch)


def _rows(columns: dict[str, np.ndarray], names: tuple[str, ...]) -> Iterator[tuple]:
    return zip(*(columns[name].tolist() for name in names), strict=True)


def _load_sqlite(path: Path, batch: Batch) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        for table, names, columns in (
            ("crm_contacts", CONTACT_COLUMNS, batch.contacts),
            ("telegram_subscribers", SUBSCRIBER_COLUMNS, batch.subscribers),
        ):
            marks = ", ".join("?" for _ in names)
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",
                _rows(columns, names),
            )
        conn.execute("COMMIT")
        # Back to SQLite's defaults, so the sync runs against an ordinary warehouse file.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
        # Statistics for the warehouse tables only, as on PostgreSQL: SQLite keeps just an
        # average per index, so sync-state tables analyzed while they held a single batch
        # would read as "every batch_id matches all rows" and be scanned whole ever after.
        conn.execute("ANALYZE crm_contacts")
        conn.execute("ANALYZE telegram_subscribers")
    finally:
        conn.close()


def _copy_text(frame: pd.DataFrame) -> str:
    """COPY text format; generated values hold no tabs, newlines or backslashes."""
    buffer = io.StringIO()
    frame.to_csv(buffer, sep="\t", header=False, index=False, na_rep="\\N", quoting=csv.QUOTE_NONE)
    return buffer.getvalue()


def _load_postgres(url: str, batch: Batch) -> None:
    import psycopg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        for table, names, columns in (
            ("crm_contacts", CONTACT_COLUMNS, batch.contacts),
            ("telegram_subscribers", SUBSCRIBER_COLUMNS, batch.subscribers),
        ):
            total = len(columns[names[0]])
            with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for start in range(0, total, COPY_ROWS):
                    part = pd.DataFrame(
                        {n: columns[n][start : start + COPY_ROWS] for n in names}, dtype=object
                    )
                    copy.write(_copy_text(part))
        conn.commit()
        # VACUUM as autovacuum would by the next night: it also marks the pages all-visible,
        # which lets PostgreSQL answer the window from the covering index alone.
        conn.autocommit = True
        cursor.execute("VACUUM (ANALYZE) crm_contacts")
        cursor.execute("VACUUM (ANALYZE) telegram_subscribers")


def subscriber_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM telegram_subscribers")).scalar_one())


def latest_run(engine: Engine) -> dict[str, object] | None:
    """The newest row of ``esputnik_sync_runs``: the phase seconds and counts of the last run."""
    query = text(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM esputnik_sync_runs ORDER BY started_at DESC LIMIT 1"
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else None


@contextmanager
def opened(warehouse: Warehouse) -> Iterator[Engine]:
    engine = warehouse.engine()
    try:
        yield engine
    finally:
        engine.dispose()
