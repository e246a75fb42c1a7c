"""Row rules of a batch: rejects, dropped identifiers, one row per token. No Dagster."""

import numpy as np
import pandas as pd
import pytest

from dagster_project.core.batch import RAW_COLUMNS, _order, validate_batch


def raw_batch(*rows: dict) -> pd.DataFrame:
    base = dict.fromkeys(RAW_COLUMNS)
    frame = [
        base | {"source_row": n, "status": "active", "subscribed_at": "2026-01-10 10:00:00"} | row
        for n, row in enumerate(rows, start=1)
    ]
    return pd.DataFrame(frame, columns=list(RAW_COLUMNS))


def crm(customer_id: str, **fields) -> dict:
    return {"subscriber_customer_id": customer_id, "crm_customer_id": customer_id, **fields}


def accepted_by_token(result) -> dict[str, dict]:
    return result.accepted.set_index("token").to_dict("index")


def reasons(result) -> dict[int, str]:
    return dict(zip(result.rejects["source_row"], result.rejects["reason"], strict=True))


def test_crm_identifiers_are_mapped_and_normalized():
    result = validate_batch(
        raw_batch(
            {"chat_id": " 111 "}
            | crm(
                "C-1",
                esputnik_contact_id="77",
                crm_email=" Ann@Example.COM ",
                crm_phone="+38 (050) 123-45-67",
            )
        ),
        "UA",
    )
    row = accepted_by_token(result)["111"]
    assert (row["contact_id"], row["external_customer_id"]) == (77, "C-1")
    assert (row["phone"], row["email"]) == ("380501234567", "ann@example.com")
    assert result.rejects.empty


def test_crm_phone_wins_and_bot_phone_is_the_fallback():
    result = validate_batch(
        raw_batch(
            {"chat_id": "1", "bot_phone": "0661112233"} | crm("C-1", crm_phone="0501234567"),
            {"chat_id": "2", "bot_phone": "0661112233"},
            {"chat_id": "3", "bot_phone": "0661112233"} | crm("C-3", crm_phone="12-34"),
        ),
        "UA",
    )
    rows = accepted_by_token(result)
    assert rows["1"]["phone"] == "380501234567"
    assert rows["2"]["phone"] == "380661112233"
    assert rows["3"]["phone"] == "380661112233"  # bad CRM phone dropped, bot phone used
    assert result.drop_counts()["invalid_phone"] == 1


def test_external_id_only_when_the_crm_row_exists():
    result = validate_batch(
        raw_batch({"chat_id": "1", "subscriber_customer_id": "ghost", "bot_phone": "0501234567"}),
        "UA",
    )
    assert pd.isna(accepted_by_token(result)["1"]["external_customer_id"])


def test_blocked_subscribers_are_never_sent():
    result = validate_batch(
        raw_batch({"chat_id": "1", "status": "blocked"} | crm("C-1", crm_email="a@b.co")), "UA"
    )
    assert result.accepted.empty
    assert reasons(result) == {1: "blocked"}


def test_row_without_any_valid_identifier_is_rejected_with_the_causes():
    result = validate_batch(
        raw_batch(
            {"chat_id": "1"},
            {"chat_id": "2", "bot_phone": "12-34"},
            {"chat_id": "3"} | crm("C-3", crm_email="broken@"),
        ),
        "UA",
    )
    # C-3 still has its externalCustomerId, so it is sent without the bad email.
    assert list(result.accepted["token"]) == ["3"]
    assert reasons(result) == {
        1: "no_valid_identifier",
        2: "no_valid_identifier",
        3: "invalid_email",
    }
    details = result.rejects.set_index("source_row")["detail"]
    assert details[1] == "no identifier present"
    assert "phone" in details[2]


def test_bad_email_is_dropped_and_row_kept_when_phone_remains():
    result = validate_batch(
        raw_batch({"chat_id": "1", "bot_phone": "+380501234567"} | crm("C", crm_email="no-at")),
        "UA",
    )
    row = accepted_by_token(result)["1"]
    assert pd.isna(row["email"]) and row["phone"] == "380501234567"
    dropped = result.rejects.iloc[0]
    assert (dropped["outcome"], dropped["reason"]) == ("identifier_dropped", "invalid_email")


@pytest.mark.parametrize("chat_id", ["", "   ", None, "\t"])
def test_empty_tokens_are_rejected(chat_id):
    result = validate_batch(raw_batch({"chat_id": chat_id, "bot_phone": "0501234567"}), "UA")
    assert result.accepted.empty
    assert reasons(result) == {1: "empty_token"}


def test_duplicate_chat_rows_send_the_richest_once():
    result = validate_batch(
        raw_batch(
            {"chat_id": "5", "bot_phone": "0501234567"},
            {"chat_id": " 5 "} | crm("C-5", esputnik_contact_id=9),
            {"chat_id": "5", "bot_phone": "0661112233", "subscribed_at": "2026-01-11 00:00:00"},
        ),
        "UA",
    )
    assert list(result.accepted["token"]) == ["5"]
    assert accepted_by_token(result)["5"]["contact_id"] == 9
    assert reasons(result) == {1: "duplicate_token", 3: "duplicate_token"}
    assert result.reject_counts()["duplicate_token"] == 2


def test_latest_status_of_a_duplicated_chat_decides():
    result = validate_batch(
        raw_batch(
            {"chat_id": "7", "bot_phone": "0501234567"},
            {
                "chat_id": "7",
                "status": "blocked",
                "bot_phone": "0501234567",
                "status_changed_at": "2026-01-20 00:00:00",
            },
        ),
        "UA",
    )
    assert result.accepted.empty
    assert set(reasons(result).values()) == {"blocked"}


def test_unknown_status_is_rejected_not_guessed():
    result = validate_batch(
        raw_batch({"chat_id": "1", "status": "paused", "bot_phone": "0501234567"}), "UA"
    )
    assert reasons(result) == {1: "unknown_status"}


def test_customer_id_with_quotes_and_sql_is_kept_verbatim():
    tricky = "x'); DELETE FROM crm_contacts; --\""
    result = validate_batch(raw_batch({"chat_id": "1"} | crm(tricky)), "UA")
    assert accepted_by_token(result)["1"]["external_customer_id"] == tricky


def test_every_input_row_is_accounted_for():
    rows = [
        {"chat_id": str(n % 7), "bot_phone": "0501234567" if n % 3 else None} for n in range(40)
    ]
    result = validate_batch(raw_batch(*rows), "UA")
    refused = result.rejects[result.rejects["outcome"] == "rejected"]
    assert len(result.accepted) + len(refused) == 40
    assert result.accepted["token"].is_unique


def test_numeric_chat_ids_become_one_integer_token_and_others_are_refused():
    phone = {"bot_phone": "0661112233"}
    result = validate_batch(
        raw_batch(
            {"chat_id": "900000001.0"} | phone,
            {"chat_id": 900000002.0} | phone,
            {"chat_id": " -1001234567890 "} | phone,
            {"chat_id": "12.5"} | phone,
            {"chat_id": "abc"} | phone,
            {"chat_id": "  "} | phone,
        ),
        "UA",
    )
    assert set(accepted_by_token(result)) == {"900000001", "900000002", "-1001234567890"}
    assert reasons(result) == {4: "invalid_chat_id", 5: "invalid_chat_id", 6: "empty_token"}
    assert result.reject_counts()["invalid_chat_id"] == 2


def test_timestamps_read_as_pandas_infers_them_whatever_the_spelling():
    from dagster_project.core.batch import _utc

    spellings = [
        "2026-01-10 10:00:00",
        "2026-01-10T10:00:00+02:00",
        "2026-01-10 10:00:00.123456",
        "2026-01-10",
        "Jan 10 2026 10:00",
        "10/01/2026",
        "garbage",
        None,
    ]
    values = pd.Series(spellings, dtype="string[pyarrow]")
    inferred = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    assert _utc(values).equals(inferred)


def test_order_orders_as_sort_values():
    rng = np.random.default_rng(5)
    count = 5_000
    frame = pd.DataFrame(
        {
            "token_code": rng.integers(0, 800, count),
            "last_event_at": pd.to_datetime(rng.integers(0, 50, count) * 10**9, utc=True),
            "rank": rng.integers(0, 2, count),
            "source_row": rng.permutation(count),
        },
        index=rng.permutation(count) + 10,
    )
    frame.loc[frame.index[::9], "last_event_at"] = pd.NaT
    columns = ["token_code", "last_event_at", "rank", "source_row"]
    for ascending in ([True, False, False, True], [False, True, True, False], [True] * 4):
        for used in (columns, columns[:3]):
            expected = frame.sort_values(used, ascending=ascending[: len(used)], na_position="last")
            got = frame.iloc[_order(frame, used, ascending[: len(used)])]
            assert got.index.equals(expected.index)
