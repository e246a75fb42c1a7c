"""Token buckets: a batch too big for one bucket is spilled to disk and comes back whole, with
every token's rows in one bucket and nothing left behind; on both databases."""

from __future__ import annotations

import tempfile

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from dagster_project.core.buckets import SpillError, bucket_count, unpushed_buckets
from dagster_project.core.schema import ensure_state_schema
from dagster_project.core.settled import tokens_of
from dagster_project.core.staging import read_unpushed_extract

APP = "app-1"


def stage_rows(engine, batch_id: str, chat_ids: list[str | None]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO esputnik_stage_extract (batch_id, source_row, chat_id, status,"
                " subscribed_at, crm_email) VALUES (:batch_id, :source_row, :chat_id, 'active',"
                " '2026-01-05 10:00:00', :email)"
            ),
            [
                {"batch_id": batch_id, "source_row": n, "chat_id": c, "email": f"u{n}@example.com"}
                for n, c in enumerate(chat_ids, start=1)
            ],
        )


def test_spilled_buckets_hold_every_row_once_and_each_token_whole(
    warehouse_url, tmp_path, monkeypatch
):
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    # 60 tokens, some on several rows, one written with blanks around it, two without a token
    chat_ids = [str(1000 + n % 60) for n in range(150)] + [" 1007\t", None, "  "]
    stage_rows(engine, "b1", chat_ids)
    stage_rows(engine, "b2", ["9999"])  # another batch: never read

    buckets = list(unpushed_buckets(engine, "b1", APP, bucket_count(len(chat_ids), 20)))

    assert len(buckets) > 1
    assert list(spill.iterdir()) == []  # the spill files are gone
    whole = read_unpushed_extract(engine, "b1", APP)
    together = pd.concat(buckets, ignore_index=True).sort_values("source_row")
    pd.testing.assert_frame_equal(together.reset_index(drop=True), whole)
    owners = pd.concat(
        [
            pd.DataFrame({"token": tokens_of(b["chat_id"]), "bucket": n})
            for n, b in enumerate(buckets)
        ]
    )
    assert owners.groupby("token")["bucket"].nunique().max() == 1
    assert owners["token"].value_counts()["1007"] == 4  # ' 1007\t' shares 1007's bucket
    engine.dispose()


def test_a_batch_that_fits_is_one_bucket(warehouse_url):
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    stage_rows(engine, "b1", ["1", "2", "2"])
    buckets = list(unpushed_buckets(engine, "b1", APP, bucket_count(3, 200_000)))
    assert [len(b) for b in buckets] == [3]
    engine.dispose()


def test_bucket_count():
    assert [bucket_count(n, 10) for n in (0, 1, 10, 11, 95)] == [1, 1, 1, 2, 10]


def test_ledger_is_checked_again_only_when_asked(warehouse_url):
    """The in-database extract stages unpushed rows only, so validation need not look again;
    state in another database stages everything and relies on this second look."""
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    stage_rows(engine, "b1", ["1", " 2 ", "3"])
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO esputnik_token_ledger (app_uuid, token, pushed_at, run_id, chunk_no)"
                " VALUES (:app, '2', '2026-01-01 00:00:00', 'r', 1)"
            ),
            {"app": APP},
        )
    rechecked = read_unpushed_extract(engine, "b1", APP)
    as_staged = read_unpushed_extract(engine, "b1", APP, recheck_ledger=False)
    assert rechecked["chat_id"].tolist() == ["1", "3"]
    assert as_staged["chat_id"].tolist() == ["1", " 2 ", "3"]
    engine.dispose()


def test_unwritable_spill_directory_is_a_clear_error(warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    engine = create_engine(warehouse_url)
    ensure_state_schema(engine)
    stage_rows(engine, "b1", ["1", "2", "3"])
    with pytest.raises(SpillError, match=r"TMPDIR.*SYNC_VALIDATE_CHUNK_ROWS"):
        list(unpushed_buckets(engine, "b1", APP, bucket_count(3, 1)))
    engine.dispose()
