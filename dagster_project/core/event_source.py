"""The warehouse table esputnik_message_events, read in chunks and counted cheaply.

The table may carry an ``app_uuid`` column (one table for several apps): then only the
configured app's rows are read or counted. Without it, the table belongs to one app.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, inspect, text

from dagster_project.core.db import db_timestamp, render_sql

EVENTS_TABLE = "esputnik_message_events"


@dataclass(frozen=True)
class EventSource:
    """The events table of one warehouse, as seen by one app."""

    engine: Engine
    app_uuid: str
    per_app: bool  # the table has an app_uuid column

    @classmethod
    def open(cls, engine: Engine, app_uuid: str) -> EventSource:
        columns = {c["name"].lower() for c in inspect(engine).get_columns(EVENTS_TABLE)}
        return cls(engine, app_uuid, "app_uuid" in columns)

    def _sql(self, name: str) -> str:
        return render_sql(name, and_app="AND app_uuid = :app_uuid" if self.per_app else "")

    def _params(self, **params: object) -> dict[str, object]:
        return {"app_uuid": self.app_uuid, **params} if self.per_app else params

    def chunks(self, since: datetime, chunk_rows: int, undated: bool) -> Iterator[pd.DataFrame]:
        """Events from ``since`` on, oldest first, ``chunk_rows`` at a time; then, with
        ``undated``, the events without a time."""
        yield from self._read("extract_message_events.sql", chunk_rows, since=since)
        if undated:
            yield from self._read("extract_undated_message_events.sql", chunk_rows)

    def _read(self, name: str, chunk_rows: int, **params: object) -> Iterator[pd.DataFrame]:
        params = {k: db_timestamp(self.engine, v) for k, v in params.items()}
        with self.engine.connect() as conn:
            streamed = conn.execution_options(stream_results=conn.dialect.name != "sqlite")
            yield from pd.read_sql(
                text(self._sql(name)), streamed, params=self._params(**params), chunksize=chunk_rows
            )

    def count_before(self, before: datetime) -> int:
        """Events dated before ``before``."""
        params = self._params(before=db_timestamp(self.engine, before))
        return self._count("count_message_events_before.sql", params)

    def count_undated(self) -> int:
        return self._count("count_undated_message_events.sql", self._params())

    def _count(self, name: str, params: dict[str, object]) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(self._sql(name)), params).scalar_one())
