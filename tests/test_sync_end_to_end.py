"""The whole group materialized against the sandbox over HTTP, on SQLite and PostgreSQL."""

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from tests.helpers import (
    add_contacts,
    add_subscribers,
    last_metadata,
    run_sync,
    scope_config,
    sent_identifiers,
    sync_resources,
    token_counts,
    warehouse_engine,
)

# the metadata names of the validate step's parts, as README.md gives them
PART_NAMES = ("setup", "settled", "read", "normalize", "write", "raw_suite")

TRICKY_ID = "Q'uote\"; DROP TABLE crm_contacts;--"


@pytest.fixture
def january(warehouse_url):
    """A January warehouse with every awkward case the sync must handle."""
    engine = warehouse_engine(warehouse_url)
    add_contacts(
        engine,
        {
            "customer_id": "C-1",
            "esputnik_contact_id": 101,
            "email": " Ann@Example.COM ",
            "phone": "+38 (050) 111-22-33",
        },
        {"customer_id": "C-2", "email": "broken@"},
        {"customer_id": TRICKY_ID, "email": "q@example.com"},
    )
    add_subscribers(
        engine,
        {"chat_id": " 1001 ", "customer_id": "C-1", "subscribed_at": "2026-01-05 10:00:00"},
        {"chat_id": "1002", "customer_id": "C-2", "subscribed_at": "2026-01-06 10:00:00"},
        {"chat_id": "1003", "phone": "050-444-55-66", "subscribed_at": "2026-01-07 10:00:00"},
        {
            "chat_id": "1004",
            "phone": "0504445567",
            "status": "blocked",
            "subscribed_at": "2026-01-08 10:00:00",
            "status_changed_at": "2026-01-09 10:00:00",
        },
        {"chat_id": "1005", "subscribed_at": "2026-01-09 10:00:00"},
        {"chat_id": "   ", "phone": "0504445568", "subscribed_at": "2026-01-10 10:00:00"},
        {"chat_id": "1007", "customer_id": TRICKY_ID, "subscribed_at": "2026-01-11 10:00:00"},
        {"chat_id": "1007", "phone": "0504445569", "subscribed_at": "2026-01-12 10:00:00"},
        {"chat_id": "1008", "phone": "0504445570", "subscribed_at": "2025-12-31 23:59:59"},
        {"chat_id": "1009", "phone": "0504445571", "subscribed_at": "2026-02-01 00:00:00"},
        {"chat_id": "1010", "phone": "+380504445572", "subscribed_at": "2026-01-01 00:00:00"},
        {"chat_id": "1011", "customer_id": "C-LATE", "subscribed_at": "2026-01-13 10:00:00"},
    )
    return engine


# Validating two rows at a time must decide exactly as one pass does: a token's rows share a chunk.
@pytest.mark.parametrize("chunk_rows", [200_000, 2], ids=["one-chunk", "chunks-of-2"])
def test_first_run_pushes_each_valid_token_once_with_the_right_identifiers(
    january, warehouse_url, sandbox, chunk_rows
):
    settings = {"max_no_identifier_share": 0.5, "validate_chunk_rows": chunk_rows}
    result = run_sync(sync_resources(warehouse_url, sandbox, settings=settings))
    assert result.success

    assert token_counts(sandbox) == Counter(
        dict.fromkeys(["1001", "1002", "1003", "1007", "1008", "1009", "1010"], 1)
    )
    sent = sent_identifiers(sandbox)
    assert sent["1001"] == {
        "contactId": 101,
        "externalCustomerId": "C-1",
        "phone": "380501112233",
        "email": "ann@example.com",
    }
    assert sent["1002"] == {"externalCustomerId": "C-2"}  # bad email dropped
    assert sent["1003"] == {"phone": "380504445566"}
    assert sent["1007"] == {"externalCustomerId": TRICKY_ID, "email": "q@example.com"}
    assert sent["1010"] == {"phone": "380504445572"}
    assert sent["1008"] == {"phone": "380504445570"}  # subscription dates do not matter

    with january.connect() as conn:
        rejects = set(
            conn.execute(text("SELECT chat_id, outcome, reason FROM esputnik_sync_rejects")).all()
        )
        ledger = conn.execute(
            text("SELECT COUNT(*), COUNT(DISTINCT token) FROM esputnik_token_ledger")
        ).one()
    assert rejects == {
        ("1002", "identifier_dropped", "invalid_email"),
        ("1004", "rejected", "blocked"),
        ("1005", "rejected", "no_valid_identifier"),
        ("   ", "rejected", "empty_token"),
        ("1007", "rejected", "duplicate_token"),
        ("1011", "rejected", "no_valid_identifier"),
    }
    assert tuple(ledger) == (7, 7)

    extract = last_metadata(result, "subscriber_extract")
    validated = last_metadata(result, "validated_subscribers")
    diff = last_metadata(result, "new_esputnik_tokens")
    pushed = last_metadata(result, "esputnik_pushed_tokens")
    assert extract["rows_extracted"] == 12
    assert extract["scope"] == "full"
    assert validated["rows_valid"] == 7
    # the GX import is a part of its own, never counted in the suite's seconds as well
    gx_parts = validated["gx_import_seconds"] + validated["gx_seconds"]
    assert validated["gx_seconds"] > 0 and gx_parts <= validated["validate_seconds"]
    # and so is each other part, under a name that stays the same from run to run
    parts = [validated[f"validate_{part}_seconds"] for part in PART_NAMES]
    assert validated["validate_normalize_seconds"] > 0
    assert sum(parts) + gx_parts <= validated["validate_seconds"]
    assert validated["rejected_blocked"] == 1
    assert validated["rejected_no_valid_identifier"] == 2
    assert validated["rejected_empty_token"] == 1
    assert validated["rejected_duplicate_token"] == 1
    assert validated["dropped_invalid_email"] == 1
    sample = validated["rejects_sample"].records
    assert "no_valid_identifier" in {r.data["reason"] for r in sample}
    assert all("@" not in str(r.data["chat_id"]) for r in sample)  # identifiers masked
    by_reason = {r.data["reason"]: r.data["rows"] for r in validated["rejects_by_reason"].records}
    assert by_reason["no_valid_identifier"] == 2
    assert validated["phone_engine"] == "rphonenumbers"
    assert (diff["tokens_new"], diff["tokens_already_pushed"]) == (7, 0)
    assert (pushed["tokens_pushed"], pushed["chunks_pushed"]) == (7, 4)
    check = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "payload_contract"
    )
    assert check.passed
    chunks = check.metadata["chunks"].value
    assert (chunks == 1) if chunk_rows > 12 else (1 < chunks <= 7)  # 12 rows, 7 token buckets


def test_rerun_sends_only_what_is_new_including_late_crm_links(january, warehouse_url, sandbox):
    resources = sync_resources(warehouse_url, sandbox)
    assert run_sync(resources).success
    first = token_counts(sandbox)

    rerun = run_sync(resources)
    assert rerun.success
    assert token_counts(sandbox) == first
    assert last_metadata(rerun, "new_esputnik_tokens")["tokens_new"] == 0
    assert last_metadata(rerun, "esputnik_pushed_tokens")["tokens_pushed"] == 0
    nothing_new = last_metadata(rerun, "validated_subscribers")
    assert nothing_new["phone_engine"] == "none needed"
    assert (nothing_new["gx_import_seconds"], nothing_new["gx_seconds"]) == (0, 0)
    assert nothing_new["validate_normalize_seconds"] == 0  # nothing new to normalize either
    assert all(f"validate_{part}_seconds" in nothing_new for part in PART_NAMES)

    # Overnight: 1011's CRM contact lands, and a new subscriber arrives.
    add_contacts(january, {"customer_id": "C-LATE", "phone": "0671234567"})
    add_subscribers(
        january, {"chat_id": "1012", "phone": "0671234568", "subscribed_at": "2026-01-20 08:00:00"}
    )
    third = run_sync(resources)
    assert third.success
    assert token_counts(sandbox) == first + Counter({"1011": 1, "1012": 1})
    assert sent_identifiers(sandbox)["1011"] == {
        "externalCustomerId": "C-LATE",
        "phone": "380671234567",
    }
    # The eight rows of the seven pushed tokens are skipped before validation, and so are the
    # three refused on both earlier nights (blocked 1004, anonymous 1005, blank chat id).
    validated = last_metadata(third, "validated_subscribers")
    assert validated["rows_already_pushed"] == 8
    assert (validated["rows_settled"], validated["rows_validated"]) == (3, 2)


def test_a_range_in_run_config_reads_only_those_subscription_days(january, warehouse_url, sandbox):
    resources = sync_resources(warehouse_url, sandbox)
    january_only = scope_config(subscribed_from="2026-01-01", subscribed_to="2026-01-31")
    ranged = run_sync(resources, january_only)
    assert ranged.success
    assert last_metadata(ranged, "subscriber_extract")["scope"] == "range"
    assert "1008" not in token_counts(sandbox)  # 2025-12-31 23:59:59
    assert "1009" not in token_counts(sandbox)  # 2026-02-01 00:00:00
    assert token_counts(sandbox)["1010"] == 1  # 2026-01-01 00:00:00

    assert run_sync(resources, scope_config(subscribed_to="2025-12-31")).success
    assert token_counts(sandbox)["1008"] == 1
    assert "1009" not in token_counts(sandbox)
    everything = run_sync(resources)
    assert last_metadata(everything, "subscriber_extract")["scope"] == "full"
    assert token_counts(sandbox)["1009"] == 1
    assert max(token_counts(sandbox).values()) == 1


def test_a_bad_date_in_run_config_fails_the_run_naming_the_field(sqlite_url, sandbox):
    result = run_sync(sync_resources(sqlite_url, sandbox), scope_config(subscribed_from="01/02"))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "subscribed_from='01/02' is not a date" in failure.step_failure_data.error.message


def test_run_history_records_each_phase(january, warehouse_url, sandbox):
    result = run_sync(sync_resources(warehouse_url, sandbox))
    with january.connect() as conn:
        row = conn.execute(
            text(
                "SELECT run_id, rows_extracted, rows_valid, rows_rejected, tokens_new,"
                " tokens_pushed, chunks_pushed, finished_at FROM esputnik_sync_runs"
            )
        ).one()
    assert row.run_id == result.run_id
    assert (row.rows_extracted, row.rows_valid, row.rows_rejected) == (12, 7, 5)
    assert (row.tokens_new, row.tokens_pushed, row.chunks_pushed) == (7, 7, 4)
    assert row.finished_at is not None


def test_separate_state_database_streams_only_changed_rows(sqlite_url, postgres_url, sandbox):
    """Warehouse on SQLite, ledger and staging on PostgreSQL (SYNC_STATE_URL): the first run
    reads everything, later ones the rows changed since the last run (less the overlap); a
    late row dated before the cursor waits for a full scan."""
    from dagster_project.resources import WarehouseResource

    engine = warehouse_engine(sqlite_url)
    add_subscribers(
        engine,
        {"chat_id": " 1 ", "phone": "0501234567", "subscribed_at": "2026-01-02 00:00:00"},
        {"chat_id": "2", "phone": "0501234568", "subscribed_at": "2026-01-03 00:00:00"},
        {
            "chat_id": "3",
            "status": "blocked",
            "phone": "0501234569",
            "subscribed_at": "2026-01-03 00:00:00",
        },
    )
    resources = sync_resources(sqlite_url, sandbox)
    resources["warehouse"] = WarehouseResource(
        url=sqlite_url, state_url=postgres_url, extract_chunk_rows=2
    )
    first = run_sync(resources)
    assert first.success
    assert token_counts(sandbox) == Counter({"1": 1, "2": 1})
    assert last_metadata(first, "subscriber_extract")["scope"] == "full"
    assert last_metadata(first, "subscriber_extract")["rows_staged"] == 3

    just_now = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    add_subscribers(
        engine,
        {"chat_id": "4", "phone": "0501234570", "subscribed_at": just_now},
        {"chat_id": "5", "phone": "0501234571", "subscribed_at": "2025-06-01 00:00:00"},
    )
    second = run_sync(resources)
    extract = last_metadata(second, "subscriber_extract")
    assert (extract["scope"], extract["rows_staged"], extract["rows_extracted"]) == (
        "changes",
        1,
        5,
    )
    assert token_counts(sandbox) == Counter({"1": 1, "2": 1, "4": 1})

    full = run_sync(resources, scope_config(full_scan=True))
    assert last_metadata(full, "subscriber_extract")["scope"] == "full"
    assert token_counts(sandbox) == Counter({"1": 1, "2": 1, "4": 1, "5": 1})
    assert last_metadata(full, "validated_subscribers")["rows_already_pushed"] == 3
    with warehouse_engine(postgres_url).connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM esputnik_token_ledger")).scalar_one() == 4
