"""Where SQL reads a raw value the way a rule in Python does, the two must agree.

The extract skips a row in SQL when its trimmed chat id is a token the ledger holds live
(sql/stage_unpushed_extract.sql, sql/read_unpushed_extract.sql): whenever the database's trimmed
text is a canonical token, the token rule (normalize_chat_id) gives that same token, so a
skipped row is one the diff would skip. The identifier coverage counts active subscribers as the
rules read a status."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from dagster_project.core.batch import status_key
from dagster_project.core.ids import normalize_chat_id

_SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u2003", "\r\n", ""]
_BODIES = [
    "0",
    "7",
    "123456789",
    "-1001234567890",
    "+42",
    "0042",
    "-0",
    "12.0",
    "12.5",
    "1e5",
    "9223372036854775807",
    "9223372036854775808",
    "12 34",
    "\uff11\uff12\uff13",  # full-width digits
    "abc",
    "",
]


def _chat_ids(count: int) -> list[str]:
    rng = random.Random(20261203)
    values = {a + body + b for body in _BODIES for a in _SPACES for b in _SPACES}
    while len(values) < count:
        digits = str(rng.randrange(1, 10 ** rng.randrange(1, 19)))
        sign = rng.choice(["", "-", "+"])
        values.add(rng.choice(_SPACES) + sign + digits + rng.choice(_SPACES))
    return sorted(values)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sql_trim_skips_only_rows_the_token_rule_agrees_on(backend, sqlite_url, request):
    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    values = _chat_ids(5_000)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE chat_ids (chat_id TEXT)"))
        conn.execute(text("INSERT INTO chat_ids VALUES (:v)"), [{"v": v} for v in values])
        trimmed = conn.execute(
            text("SELECT chat_id, TRIM(CAST(chat_id AS VARCHAR(64))) FROM chat_ids")
        ).all()
    engine.dispose()

    agreed = 0
    for raw, sql_token in trimmed:
        if sql_token and normalize_chat_id(sql_token).value == sql_token:
            assert normalize_chat_id(raw).value == sql_token, f"chat id {raw!r}"
            agreed += 1
    # the shortcut is exercised: hundreds of the generated ids trim to a canonical token
    assert agreed >= 400


_STATUSES = ["active", " Active ", "ACTIVE", "active\t", "\tactive", "\u00a0active", "Active\n"]
_STATUSES += ["blocked", " BLOCKED ", "", "   ", "actve", "inactive", "\u212aactive"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_coverage_and_the_rules_read_active_the_same_way(backend, sqlite_url, request):
    """sql/identifier_coverage.sql counts active subscribers with LOWER(TRIM(status)); the
    rules read a status with status_key. They must agree on every value."""
    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE statuses (n INTEGER, status TEXT)"))
        conn.execute(
            text("INSERT INTO statuses VALUES (:n, :s)"),
            [{"n": n, "s": s} for n, s in enumerate([*_STATUSES, None])],
        )
        in_sql = [
            bool(active)
            for (active,) in conn.execute(
                text(
                    "SELECT COALESCE(LOWER(TRIM(status)) = 'active', FALSE) FROM statuses"
                    " ORDER BY n"
                )
            )
        ]
    engine.dispose()
    by_rules = (status_key(pd.Series([*_STATUSES, None], dtype="string")) == "active").tolist()
    assert in_sql == by_rules
    assert sum(by_rules) == 3  # 'active', ' Active ', 'ACTIVE'
