"""Refusals that would only repeat themselves: token groups refused before and unchanged since.

On a nightly rerun most staged rows are rows refused on an earlier night (blocked subscribers,
rows without a usable identifier): their tokens never reach the ledger, so the extract stages
them again, and validating them again can only give the same answer. A token's staged rows are
therefore validated only when the group differs from one refused before under the same rules:
a row added, removed or changed anywhere in the group brings the whole group back, so every
decision is still taken over all the token's rows, as ``validate_batch`` requires.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Engine, text

from dagster_project.core.column_rules import normalize_column
from dagster_project.core.columns import EXTRACT_COLUMNS
from dagster_project.core.db import sqlite_cursor
from dagster_project.core.ids import normalize_chat_id

# Bump when validate_batch would decide differently on the same rows: every group is then
# validated afresh once.
RULES_VERSION = 2  # 2: the token is the chat id as integer text
GROUP_COLUMNS = list(EXTRACT_COLUMNS)  # a row as the warehouse gave it: source_row differs per run
SETTLED_COLUMNS = ("token", "group_hash")


def rules_key(default_region: str | None) -> str:
    """What a refusal depended on besides the rows: the rules, the region and the hashing."""
    return f"v{RULES_VERSION};region={default_region or '-'};pandas={pd.__version__}"


def tokens_of(chat_ids: pd.Series) -> pd.Series:
    """Each row's token as validate_batch derives it ('' where there is none): the same rule
    through the same column path."""
    tokens, _ = normalize_column(chat_ids, normalize_chat_id)
    return tokens.where(tokens.notna(), "")


def group_keys(raw: pd.DataFrame, tokens: pd.Series | None = None) -> pd.DataFrame:
    """Per row: its token (as validate_batch derives it; ``tokens`` if already known) and a hash
    of its token's whole group. The group hash sums the 64-bit hashes of the group's rows, so it
    ignores row order and changes with any row added, removed or edited; it depends on the
    group's rows alone, so any set of whole groups can be hashed on its own.
    """
    token = tokens_of(raw["chat_id"]) if tokens is None else tokens
    rows = pd.util.hash_pandas_object(raw[GROUP_COLUMNS].astype("string"), index=False)
    codes, _ = pd.factorize(token)  # grouping by integer codes is several times faster
    by_token = pd.Series(rows.to_numpy(), index=raw.index).groupby(codes)
    summary = pd.DataFrame({"sum": by_token.transform("sum"), "size": by_token.transform("size")})
    group = pd.util.hash_pandas_object(summary, index=False).to_numpy().view("int64")
    return pd.DataFrame({"token": token, "group_hash": group}, index=raw.index)


def settled_pairs(rows: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """The (token, group_hash) pairs refused before, in the form ``is_settled`` looks up."""
    return {(token, int(group_hash)) for token, group_hash in rows}


def is_settled(keys: pd.DataFrame, settled: set[tuple[str, int]]) -> pd.Series:
    """Rows whose token group was refused before, unchanged. A set of plain tuples, built once
    per run, answers in a fraction of the time a MultiIndex ``isin`` takes per bucket."""
    pairs = zip(keys["token"].tolist(), keys["group_hash"].tolist(), strict=True)
    return pd.Series([pair in settled for pair in pairs], index=keys.index, dtype=bool)


def settled_rows(raw: pd.DataFrame, tokens: pd.Series, settled: set[tuple[str, int]]) -> pd.Series:
    """Rows whose token group was refused before, unchanged. Only the groups of tokens refused
    before are hashed (none on a first run): another token cannot be settled."""
    candidates = tokens.isin({token for token, _ in settled})
    answer = pd.Series(False, index=raw.index, dtype=bool)
    if candidates.any():
        keys = group_keys(raw.loc[candidates], tokens.loc[candidates])
        answer.loc[candidates] = is_settled(keys, settled).to_numpy()
    return answer


def refused_groups(raw: pd.DataFrame, tokens: pd.Series, accepted: pd.DataFrame) -> pd.DataFrame:
    """(token, group_hash) of the validated groups none of whose rows is to be sent; only
    those groups are hashed."""
    sent = tokens.loc[raw["source_row"].isin(accepted["source_row"])]
    refused = ~tokens.isin(sent)
    keys = group_keys(raw.loc[refused], tokens.loc[refused])
    return keys[list(SETTLED_COLUMNS)].drop_duplicates()


def read_settled(engine: Engine, app_uuid: str, rules: str) -> set[tuple[str, int]]:
    """Token groups refused before under ``rules`` (see core/settled.py)."""
    query = (
        "SELECT token, group_hash FROM esputnik_settled_rejects"
        " WHERE app_uuid = :app_uuid AND rules = :rules"
    )
    params = {"app_uuid": app_uuid, "rules": rules}
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            with sqlite_cursor(conn, query, params) as cursor:
                return settled_pairs(cursor)
        return settled_pairs(conn.execute(text(query), params))
