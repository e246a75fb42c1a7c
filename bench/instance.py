"""The Dagster instance the measured runs write their events to.

``sqlite`` is Dagster's default: run, event and schedule storage as SQLite files in
``DAGSTER_HOME``. ``postgres`` is the shared deployment of ``deploy/dagster.postgres.yaml``, in a
throw-away database. The floor run (bench/floor.py) uses the same instance as the sync, so the
difference between the two is the sync's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.sync_run import REPO_ROOT
from bench.warehouse import create_database, drop_database

INSTANCES = ("sqlite", "postgres")


@dataclass
class Instance:
    kind: str
    env: dict[str, str] = field(default_factory=dict)
    admin_url: str | None = None
    database_url: str | None = None

    def describe(self) -> str:
        if self.kind == "sqlite":
            return "SQLite in DAGSTER_HOME (Dagster's default)"
        return "PostgreSQL (deploy/dagster.postgres.yaml)"

    def drop(self) -> None:
        if self.admin_url and self.database_url:
            drop_database(self.admin_url, self.database_url)


def prepare(kind: str, dagster_home: Path, postgres_admin_url: str) -> Instance:
    """Write ``dagster_home/dagster.yaml`` for ``kind``; return the environment the runs need."""
    config = dagster_home / "dagster.yaml"
    if kind == "sqlite":
        config.write_text("telemetry:\n  enabled: false\n")
        return Instance(kind)
    if kind != "postgres":
        raise ValueError(f"unknown instance {kind!r}")
    url = create_database(postgres_admin_url, "esputnik_bench_dagster")
    config.write_text((REPO_ROOT / "deploy" / "dagster.postgres.yaml").read_text())
    # dagster-postgres connects through psycopg2 (see deploy/dagster.postgres.yaml)
    storage_url = make_url(url).set(drivername="postgresql+psycopg2")
    return Instance(
        kind,
        env={"DAGSTER_POSTGRES_URL": storage_url.render_as_string(hide_password=False)},
        admin_url=postgres_admin_url,
        database_url=url,
    )
