"""Refusals are not redone every night, yet any change to a token's rows brings them back."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from dagster_project.core.batch import RAW_COLUMNS
from dagster_project.core.ids import normalize_chat_id
from dagster_project.core.settled import (
    group_keys,
    is_settled,
    refused_groups,
    settled_pairs,
    settled_rows,
    tokens_of,
)
from tests.helpers import (
    add_contacts,
    add_subscribers,
    last_metadata,
    run_sync,
    sync_resources,
    token_counts,
    warehouse_engine,
)


def rows(*chats: tuple[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [{c: None for c in RAW_COLUMNS} | {"chat_id": chat, "status": s} for chat, s in chats]
    )
    frame["source_row"] = range(1, len(frame) + 1)
    return frame


def test_group_hash_follows_the_whole_group_not_the_row_order():
    base = rows(("1", "active"), (" 1", "blocked"), ("2", "active"))
    keys = group_keys(base)
    assert keys["token"].tolist() == ["1", "1", "2"]
    assert keys["group_hash"][0] == keys["group_hash"][1] != keys["group_hash"][2]
    reordered = group_keys(base.iloc[::-1].reset_index(drop=True))
    assert set(map(tuple, reordered.to_numpy())) == set(map(tuple, keys.to_numpy()))
    edited = base.assign(status=["active", "active", "active"])
    added = pd.concat([base, rows(("1", "active"))], ignore_index=True)
    removed = base.iloc[[0, 2]]
    for changed in (edited, added, removed):
        hashes = group_keys(changed).groupby("token")["group_hash"].first()
        assert hashes["1"] != keys["group_hash"][0]
        assert hashes["2"] == keys["group_hash"][2]


def test_tokens_of_matches_normalize_chat_id_on_awkward_values():
    awkward = [" 42 ", "\u00a042\u2003", "\x1c7\x1f", "", "   ", None, pd.NA, float("nan"), 17,
               "x" * 255, " " + "x" * 256, "x" * 256, "\t\n9\r", "900000001.0", "0042", "0",
               "9" * 19, "9" * 18, "-5", "\u0661"]  # fmt: skip
    texts = [v for v in awkward if v is None or isinstance(v, str)]
    for values in (pd.Series(awkward, dtype=object), pd.Series(texts, dtype="string[pyarrow]")):
        expected = [normalize_chat_id(v).value or "" for v in values]
        assert tokens_of(values).tolist() == expected
        assert {"42", "7", "", "9" * 18} <= set(expected)


def test_only_groups_without_a_sent_row_are_settled():
    raw = rows(("1", "blocked"), ("1", "active"), ("2", "blocked"), ("3", "blocked"))
    keys = group_keys(raw)
    refused = refused_groups(raw, keys["token"], pd.DataFrame({"source_row": [2]}))
    assert refused["token"].tolist() == ["2", "3"]
    assert refused["group_hash"].tolist() == keys["group_hash"][2:].tolist()
    settled = settled_pairs(refused.itertuples(index=False, name=None))
    assert is_settled(keys, settled).tolist() == [False, False, True, True]
    # the same answer when only the groups of tokens refused before are hashed
    assert settled_rows(raw, keys["token"], settled).tolist() == [False, False, True, True]
    # a group that changed since (a row added) is no longer settled
    grown = pd.concat([raw, rows(("3", "active"))], ignore_index=True)
    assert settled_rows(grown, tokens_of(grown["chat_id"]), settled).tolist() == [
        False, False, True, False, False
    ]  # fmt: skip
    assert not settled_rows(raw, keys["token"], set()).any()


def test_nightly_rerun_skips_unchanged_refusals_and_revisits_changed_ones(warehouse_url, sandbox):
    engine = warehouse_engine(warehouse_url)
    add_subscribers(
        engine,
        {"chat_id": "101", "phone": "0501110001", "subscribed_at": "2026-01-05 10:00:00"},
        {"chat_id": "102", "customer_id": "C-2", "subscribed_at": "2026-01-05 10:00:00"},
        # 103: an older active row and a newer blocked one; the blocked one decides
        {"chat_id": "103", "phone": "0501110003", "subscribed_at": "2026-01-06 10:00:00"},
        {
            "chat_id": "103",
            "status": "blocked",
            "subscribed_at": "2026-01-07 10:00:00",
            "status_changed_at": "2026-01-08 10:00:00",
        },
    )
    resources = sync_resources(warehouse_url, sandbox, settings={"max_no_identifier_share": 1})

    first = run_sync(resources)
    assert first.success
    assert last_metadata(first, "validated_subscribers")["rows_rejected"] == 3
    assert set(token_counts(sandbox)) == {"101"}

    unchanged = run_sync(resources)
    assert unchanged.success
    validated = last_metadata(unchanged, "validated_subscribers")
    assert (validated["rows_settled"], validated["rows_validated"]) == (3, 0)
    assert validated["rows_rejected"] == 0

    # 102 gets its CRM contact; 103's blocked row is deleted, so its active row is sendable.
    add_contacts(engine, {"customer_id": "C-2", "email": "c2@example.com"})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM telegram_subscribers WHERE status = 'blocked'"))
    changed = run_sync(resources)
    assert changed.success
    validated = last_metadata(changed, "validated_subscribers")
    assert (validated["rows_settled"], validated["rows_validated"]) == (0, 2)
    assert token_counts(sandbox) == {"101": 1, "102": 1, "103": 1}
    engine.dispose()
