"""The ledger of pushed tokens, the quarantine, and the tokens still to push. "Live in the
ledger" is the view ``esputnik_ledger_live`` (``sql/ledger_live_view.sql``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, bindparam, text

from dagster_project.core.db import (
    _write_tuples,
    append_frame,
    load_sql,
    sqlite_cursor,
    utc_now,
)
from dagster_project.core.staging import count_batch, delete_batch


def count_quarantined(engine: Engine, batch_id: str, app_uuid: str) -> int:
    """Valid rows of the batch held back by an earlier 400 on the same identifiers."""
    with engine.connect() as conn:
        params = {"batch_id": batch_id, "app_uuid": app_uuid}
        return int(conn.execute(text(load_sql("count_quarantined.sql")), params).scalar_one())


# The asset-facing description of the ledger_no_duplicates check: what it can and cannot see.
LEDGER_CHECK_DESCRIPTION = (
    "Counts the tokens this run set out to send that the ledger holds live more than once for "
    "the app. The unique index ux_esputnik_token_ledger_live already refuses such a row, so "
    "this check can only fail on a ledger written without the index. It cannot see copies "
    "eSputnik holds that the ledger does not record: a chunk resent after an answer was lost "
    "(at most two copies of a token; those still unresolved are counted as tokens in doubt), "
    "or a chunk in flight when a run was killed."
)


def ledger_duplicates(engine: Engine, app_uuid: str, batch_id: str) -> int:
    """Tokens of the batch recorded live more than once for the app: should always be zero."""
    with engine.connect() as conn:
        query = text(load_sql("ledger_duplicates.sql"))
        params = {"app_uuid": app_uuid, "batch_id": batch_id}
        return int(conn.execute(query, params).scalar_one())


def quarantine_token(
    engine: Engine, app_uuid: str, batch_id: str, run_id: str, row: dict, reason: str
) -> None:
    """Keep a token eSputnik refused on its own, so it is not resent while unchanged, and take
    it off the batch's list of tokens to send in the same transaction (a re-executed push then
    cannot send it again)."""
    entry = pd.DataFrame(
        [
            {
                "app_uuid": app_uuid,
                "token": row["token"],
                "fingerprint": row["fingerprint"],
                "reason": reason[:1000],
                "run_id": run_id,
                "quarantined_at": utc_now(),
            }
        ]
    )
    with engine.begin() as conn:
        append_frame(conn, "esputnik_token_quarantine", entry)
        conn.execute(
            text("DELETE FROM esputnik_stage_new WHERE batch_id = :batch_id AND token = :token"),
            {"batch_id": batch_id, "token": row["token"]},
        )


def stage_new_tokens(engine: Engine, batch_id: str, app_uuid: str) -> int:
    """Fill ``esputnik_stage_new`` for a batch by anti-joining the ledger; return its size."""
    with engine.begin() as conn:
        delete_batch(conn, "esputnik_stage_new", batch_id)
        conn.execute(
            text(load_sql("diff_new_tokens.sql")),
            {"batch_id": batch_id, "app_uuid": app_uuid},
        )
        if conn.dialect.name == "postgresql":
            # The push reads the batch a keyed page at a time; with the statistics of the tables
            # as they were before this batch, PostgreSQL read every remaining row per page.
            conn.execute(text("ANALYZE esputnik_stage_valid"))
            conn.execute(text("ANALYZE esputnik_stage_new"))
    return count_batch(engine, "esputnik_stage_new", batch_id)


# LIMIT for a statement read whole (pending_tokens.sql is written as a page).
ALL_ROWS = 2**62


def count_pending(engine: Engine, batch_id: str, app_uuid: str) -> int:
    """How many rows ``pending_chunks`` will yield (read under the same push lock), tokens in
    doubt left out."""
    query = text(f"SELECT COUNT(*) FROM ({load_sql('pending_tokens.sql')}) pending")
    with engine.connect() as conn:
        params = {"batch_id": batch_id, "app_uuid": app_uuid, "after": "", "page_size": ALL_ROWS}
        return int(conn.execute(query, params).scalar_one())


def pending_chunks(
    engine: Engine, batch_id: str, app_uuid: str, chunk_size: int
) -> Iterator[list[dict]]:
    """The batch's rows still absent from the ledger, ``chunk_size`` at a time, in token order.

    Each chunk is a keyed page (tokens after the last one read), a short statement of its own:
    a server-side cursor over the whole push held a PostgreSQL transaction open for hours. The
    token is the key because it is unique in a batch (ux_esputnik_stage_new_token); a page read
    later sees what the ledger gained meanwhile.
    """
    query = load_sql("pending_tokens.sql")
    params: dict[str, object] = {"batch_id": batch_id, "app_uuid": app_uuid, "after": ""}
    params["page_size"] = chunk_size
    while True:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                with sqlite_cursor(conn, query, params) as cursor:
                    names = [column[0] for column in cursor.description]
                    page = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            else:
                page = [dict(row) for row in conn.execute(text(query), params).mappings()]
        if not page:
            return
        yield page
        params["after"] = page[-1]["token"]


LEDGER = "esputnik_token_ledger"


LEDGER_COLUMNS = (
    "app_uuid",
    "token",
    "contact_id",
    "external_customer_id",
    "phone",
    "email",
    "pushed_at",
    "run_id",
    "chunk_no",
)


def _plain(value: object) -> object:
    """None for missing values, Python ints for numpy ones: what every DB driver binds."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return int(value) if hasattr(value, "item") and not isinstance(value, str) else value


def ledger_rows(app_uuid: str, run_id: str, chunk_no: int, rows: Sequence[dict]) -> list[dict]:
    """The ledger rows of one chunk, built before it is sent so nothing can fail after."""
    return [
        {
            "app_uuid": app_uuid,
            "token": row["token"],
            "contact_id": _plain(row.get("contact_id")),
            "external_customer_id": _plain(row.get("external_customer_id")),
            "phone": _plain(row.get("phone")),
            "email": _plain(row.get("email")),
            "run_id": run_id,
            "chunk_no": chunk_no,
        }
        for row in rows
    ]


def record_chunk(
    engine: Engine,
    ledger: list[dict],
    resolved: Sequence[str] = (),
    pushed_at: datetime | None = None,
) -> None:
    """Write one accepted chunk to the ledger in its own transaction, with the in-doubt rows
    of its ``resolved`` tokens (sent again after a lost answer) removed in the same one.

    The push waits for this before its next request, hence ``_write_tuples``: on psycopg 3 its
    COPY took a third of the time of an executemany of 1,000 rows, commit included.
    """
    moment = pushed_at or utc_now()
    stamp = moment.isoformat(sep=" ") if engine.dialect.name == "sqlite" else moment
    rows = [tuple((row | {"pushed_at": stamp})[c] for c in LEDGER_COLUMNS) for row in ledger]
    with engine.begin() as conn:
        _write_tuples(conn, LEDGER, LEDGER_COLUMNS, rows)
        if resolved and ledger:  # the counts go with the ledger rows: same transaction
            conn.execute(
                text(
                    "DELETE FROM esputnik_token_in_doubt"
                    " WHERE app_uuid = :app_uuid AND token IN :tokens"
                ).bindparams(bindparam("tokens", expanding=True)),
                {"app_uuid": ledger[0]["app_uuid"], "tokens": list(resolved)},
            )
