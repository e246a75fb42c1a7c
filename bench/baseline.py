"""The naive way to do the same job, timed on a sample: what the sync's design is measured against.

Per row: normalize with the identifier rules (``core/ids.py``, ``phones.py``, ``emails.py``), one ``SELECT`` against the ledger,
one ``requests.post`` per token (no session, no batching) and one committed ``INSERT``. Only a
random sample of the extract is processed; the per-row cost is extrapolated to every row, so its
figures are estimates and labelled as such. The sample is random rather than the first rows so
that new and already-pushed tokens appear in their real proportion.

It records what it sent in its own table and posts under another app uuid, so the measured
sync run that follows finds the warehouse and its ledger exactly as the baseline did.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import requests
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from dagster_project.core.db import db_timestamp, load_sql
from dagster_project.core.emails import normalize_email
from dagster_project.core.ids import normalize_chat_id, normalize_contact_id, normalize_external_id
from dagster_project.core.phones import normalize_phone

NAIVE_TABLE = "bench_naive_ledger"
WINDOW = (datetime(2026, 1, 1), datetime(2026, 11, 24))
READ_CHUNK = 200_000


@dataclass
class BaselineResult:
    sample_rows: int
    rows_extracted: int
    read_seconds: float
    loop_seconds: float
    tokens_posted: int
    estimated_seconds: float
    estimated_rows_per_second: float
    estimated: bool = True

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _read_sample(engine: Engine, total: int, sample: int, seed: int) -> tuple[pd.DataFrame, int]:
    """Stream the whole extract through pandas (timed), keeping ``sample`` random rows."""
    picks = np.sort(np.random.default_rng(seed).choice(total, min(sample, total), replace=False))
    params = {
        "window_start": db_timestamp(engine, WINDOW[0]),
        "window_end": db_timestamp(engine, WINDOW[1]),
    }
    kept, seen = [], 0
    with engine.connect() as conn:
        chunks = pd.read_sql(
            text(load_sql("extract_subscribers.sql")), conn, params=params, chunksize=READ_CHUNK
        )
        for chunk in chunks:
            inside = picks[(picks >= seen) & (picks < seen + len(chunk))] - seen
            kept.append(chunk.iloc[inside])
            seen += len(chunk)
    return pd.concat(kept, ignore_index=True), seen


def _value(raw: object) -> object:
    return None if raw is None or (isinstance(raw, float) and raw != raw) else raw


def run_baseline(
    engine: Engine,
    base_url: str,
    ledger_app_uuid: str,
    post_app_uuid: str,
    api_key: str,
    sample: int,
    seed: int = 11,
) -> BaselineResult:
    """Process a random sample row by row; extrapolate the time to the whole extract.

    Tokens are looked up in the sync's ledger under ``ledger_app_uuid`` (the state the measured
    run sees; the loop's own table before any sync ran) and posted under ``post_app_uuid``, so
    the sync's app stays untouched.
    """
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {NAIVE_TABLE}"))
        conn.execute(text(f"CREATE TABLE {NAIVE_TABLE} (app_uuid TEXT, token TEXT, body TEXT)"))
        conn.execute(text(f"CREATE INDEX ix_{NAIVE_TABLE} ON {NAIVE_TABLE} (app_uuid, token)"))
        total = int(conn.execute(text("SELECT COUNT(*) FROM telegram_subscribers")).scalar_one())
    url = f"{base_url.rstrip('/')}/v1/apps/{post_app_uuid}/tokens"
    started = time.perf_counter()
    frame, extracted = _read_sample(engine, total, sample, seed)
    read_seconds = time.perf_counter() - started

    posted = 0
    started = time.perf_counter()
    # Before the first sync there is no ledger yet: the loop then checks its own table.
    if inspect(engine).has_table("esputnik_token_ledger"):
        ledger, lookup_app = "esputnik_token_ledger", ledger_app_uuid
    else:
        ledger, lookup_app = NAIVE_TABLE, post_app_uuid
    lookup = text(f"SELECT 1 FROM {ledger} WHERE app_uuid = :app AND token = :token LIMIT 1")
    record = text(f"INSERT INTO {NAIVE_TABLE} (app_uuid, token, body) VALUES (:app, :token, :b)")
    with engine.connect() as conn:
        for row in frame.itertuples(index=False):
            token = normalize_chat_id(_value(row.chat_id)).value
            status = str(_value(row.status) or "").strip().lower()
            if token is None or status != "active":
                continue
            joined = _value(row.crm_customer_id) is not None
            entry: dict[str, object] = {"token": token}
            if joined:
                contact_id = normalize_contact_id(_value(row.esputnik_contact_id)).value
                external = normalize_external_id(_value(row.crm_customer_id)).value
                email = normalize_email(_value(row.crm_email)).value
                phone = normalize_phone(_value(row.crm_phone), "UA").value
            else:
                contact_id = external = email = phone = None
            if phone is None:
                phone = normalize_phone(_value(row.bot_phone), "UA").value
            for key, value in (
                ("contactId", contact_id),
                ("externalCustomerId", external),
                ("phone", phone),
                ("email", email),
            ):
                if value is not None:
                    entry[key] = value
            if len(entry) == 1:
                continue
            seen = conn.execute(lookup, {"app": lookup_app, "token": token}).first()
            conn.commit()
            if seen is not None:
                continue
            response = requests.post(
                url, json={"tokens": [entry]}, auth=("bench", api_key), timeout=30
            )
            response.raise_for_status()
            conn.execute(record, {"app": post_app_uuid, "token": token, "b": str(entry)})
            conn.commit()
            posted += 1
    loop_seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {NAIVE_TABLE}"))

    processed = max(len(frame), 1)
    estimated = read_seconds + loop_seconds * extracted / processed
    return BaselineResult(
        sample_rows=len(frame),
        rows_extracted=extracted,
        read_seconds=read_seconds,
        loop_seconds=loop_seconds,
        tokens_posted=posted,
        estimated_seconds=estimated,
        estimated_rows_per_second=extracted / estimated if estimated else 0.0,
    )
