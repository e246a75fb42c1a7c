"""Tokens held back from sending, and the explicit way back for each.

- In doubt (``esputnik_token_in_doubt``): requests carrying the token got no usable answer
  twice, so eSputnik may hold two copies; sending it again could make a third. Only a person
  who looked can say: ``release_in_doubt`` either records the tokens as pushed (eSputnik holds
  them) or lets the next run send them again (it does not).
- Quarantined (``esputnik_token_quarantine``): eSputnik refused the token alone with 400. It
  comes back by itself once its identifiers change; ``release_quarantined`` brings it back now,
  e.g. after a systemic refusal eSputnik has since fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, bindparam, text

from dagster_project.core.db import _write_tuples, db_timestamp, load_sql, split_statements, utc_now
from dagster_project.core.ledger import LEDGER_COLUMNS, record_chunk

MAX_SENDS = 2  # requests that may carry one token: sql/in_doubt.sql and pending_tokens.sql
IN_DOUBT_COLUMNS = ("contact_id", "external_customer_id", "phone", "email")


IN_DOUBT_TABLE_COLUMNS = (
    "app_uuid",
    "token",
    *IN_DOUBT_COLUMNS,
    "sends",
    "run_id",
    "chunk_no",
    "noted_at",
)


def note_sends(engine: Engine, ledger: Sequence[dict], first: bool = False) -> None:
    """Count one more request without a usable answer (yet) for each token of ``ledger`` (rows
    as ``ledger_rows`` builds them), durably, before the push goes on. ``first``: no token of
    it has a count yet (a chunk's first request), so the rows go in by the driver's bulk path."""
    if not ledger:
        return
    noted_at = db_timestamp(engine, utc_now())
    rows = [
        {c: row[c] for c in ("app_uuid", "token", "run_id", "chunk_no", *IN_DOUBT_COLUMNS)}
        | {"noted_at": noted_at, "sends": 1}
        for row in ledger
    ]
    with engine.begin() as conn:
        if first:
            tuples = [tuple(row[c] for c in IN_DOUBT_TABLE_COLUMNS) for row in rows]
            _write_tuples(conn, "esputnik_token_in_doubt", IN_DOUBT_TABLE_COLUMNS, tuples)
        else:
            conn.execute(text(load_sql("in_doubt_note.sql")), rows)


def undo_sends(engine: Engine, app_uuid: str, tokens: Sequence[str]) -> None:
    """Take back a count made ahead of a resend that eSputnik certainly did not store."""
    if not tokens:
        return
    params = [{"app_uuid": app_uuid, "token": token} for token in tokens]
    with engine.begin() as conn:
        for statement in split_statements(load_sql("in_doubt_undo.sql")):
            conn.execute(text(statement), params)


def count_in_doubt(engine: Engine, app_uuid: str) -> int:
    """Tokens in doubt for the app, whichever run put them there: for a non-blocking check,
    which should fail (warn) while this is above zero."""
    query = text(
        "SELECT COUNT(*) FROM esputnik_token_in_doubt WHERE app_uuid = :app_uuid AND sends >= 2"
    )
    with engine.connect() as conn:
        return int(conn.execute(query, {"app_uuid": app_uuid}).scalar_one())


def _selection(table: str, tokens: Sequence[str] | None, extra: str = "") -> tuple[str, dict]:
    """``FROM table WHERE app_uuid = :app_uuid`` limited to ``tokens`` when given."""
    where = f"FROM {table} WHERE app_uuid = :app_uuid{extra}"
    if tokens is not None:
        where += " AND token IN :tokens"
    return where, {"tokens": list(tokens)} if tokens is not None else {}


def release_in_doubt(
    engine: Engine,
    app_uuid: str,
    tokens: Sequence[str] | None = None,
    as_pushed: bool = False,
    run_id: str = "release",
) -> int:
    """Release tokens in doubt (all of the app's, or ``tokens``); returns how many.

    ``as_pushed``: eSputnik holds them (checked in its UI or export), so they go to the ledger
    and are never sent again. Otherwise they are pending again and the next run sends them,
    one more copy where eSputnik held one: the operator's call, never the sync's.
    """
    where, params = _selection("esputnik_token_in_doubt", tokens, " AND sends >= 2")
    params["app_uuid"] = app_uuid
    select = text(f"SELECT token, {', '.join(IN_DOUBT_COLUMNS)} {where}")
    delete = text(f"DELETE {where}")
    if tokens is not None:
        select = select.bindparams(bindparam("tokens", expanding=True))
        delete = delete.bindparams(bindparam("tokens", expanding=True))
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(select, params).mappings()]
    if as_pushed and rows:
        ledger = [
            {c: row.get(c) for c in LEDGER_COLUMNS}
            | {"app_uuid": app_uuid, "run_id": run_id, "chunk_no": 0}
            for row in rows
        ]
        record_chunk(engine, ledger, resolved=[row["token"] for row in rows])
        return len(rows)
    with engine.begin() as conn:
        return int(conn.execute(delete, params).rowcount)


def release_quarantined(
    engine: Engine,
    app_uuid: str,
    tokens: Sequence[str] | None = None,
    before: datetime | None = None,
) -> int:
    """Forget quarantine entries (all of the app's, ``tokens``, and/or those quarantined
    ``before`` a moment) so the next run sends those tokens again; returns how many."""
    extra = " AND quarantined_at < :before" if before is not None else ""
    where, params = _selection("esputnik_token_quarantine", tokens, extra)
    params["app_uuid"] = app_uuid
    if before is not None:
        params["before"] = db_timestamp(engine, before)
    delete = text(f"DELETE {where}")
    if tokens is not None:
        delete = delete.bindparams(bindparam("tokens", expanding=True))
    with engine.begin() as conn:
        return int(conn.execute(delete, params).rowcount)
