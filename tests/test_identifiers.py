"""Normalization of single identifiers, without Dagster."""

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from dagster_project.core.decoding import decode_text
from dagster_project.core.emails import normalize_email
from dagster_project.core.ids import (
    normalize_chat_id,
    normalize_contact_id,
    normalize_external_id,
)
from dagster_project.core.masking import mask_email, mask_phone
from dagster_project.core.phones import normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123456789", "123456789"),
        ("  -100123 ", "-100123"),
        ("\t42\n", "42"),
        (123, "123"),
    ],
)
def test_token_is_trimmed_chat_id(raw, expected):
    assert normalize_chat_id(raw).value == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "\t", float("nan")])
def test_blank_token_is_refused(raw):
    normalized = normalize_chat_id(raw)
    assert normalized.value is None
    assert normalized.problem == "empty token"


def test_oversized_token_is_refused():
    assert normalize_chat_id("9" * 256).problem == "chat id out of range"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("900000001", "900000001"),
        (" 900000001 ", "900000001"),
        ("900000001.0", "900000001"),  # SQLite: TRIM(900000001.0)
        ("900000001.000", "900000001"),
        (900000001.0, "900000001"),  # pandas: an integer column with a NULL
        (np.float64(900000001.0), "900000001"),
        (900000001, "900000001"),
        (np.int64(900000001), "900000001"),  # PostgreSQL BIGINT through pandas
        (Decimal("900000001"), "900000001"),  # PostgreSQL NUMERIC
        (-1001234567890, "-1001234567890"),  # groups and channels are negative
        ("-1001234567890.0", "-1001234567890"),
        ("+42", "42"),
        (b"900000001", "900000001"),
        (2**63 - 1, str(2**63 - 1)),
    ],
)
def test_integral_chat_ids_become_integer_text(raw, expected):
    assert normalize_chat_id(raw) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "empty token"),
        (" ", "empty token"),
        (float("nan"), "empty token"),
        (pd.NA, "empty token"),
        ("abc", "chat id is not an integer"),
        ("12.5", "chat id is not an integer"),
        (12.5, "chat id is not an integer"),
        (Decimal("12.5"), "chat id is not an integer"),
        (np.float32(1.5), "chat id is not an integer"),
        ("9e8", "chat id is not an integer"),
        ("1 2", "chat id is not an integer"),
        ("\u0661\u0662\u0663", "chat id is not an integer"),  # non-ASCII digits
        (float("inf"), "chat id is not an integer"),
        (True, "chat id is a boolean, not an integer"),
        (0, "chat id out of range"),
        (2**63, "chat id out of range"),
        ("9" * 30, "chat id out of range"),
        (2.0**60, "chat id out of range"),  # past exact integers in a float
        (b"\xff900", "chat id is not UTF-8 text (byte 1 of 4)"),
        ("90\udcff", "chat id is not UTF-8 text (character 3 of 3)"),
    ],
)
def test_other_chat_ids_are_refused_with_a_reason(raw, problem):
    assert normalize_chat_id(raw) == (None, problem)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"olena@example.com", ("olena@example.com", None)),
        (bytearray("Олена".encode()), ("Олена", None)),
        (memoryview(b"abc"), ("abc", None)),
        (b"ol\xe9na@example.com", (None, "not UTF-8 text (byte 3 of 17)")),
        ("ol\udce9na", (None, "not UTF-8 text (character 3 of 5)")),  # surrogateescape
        ("Олена", ("Олена", None)),
        (None, (None, None)),
        (42, (42, None)),
    ],
)
def test_undecodable_values_become_none_with_a_reason_naming_no_value(raw, expected):
    decoded = decode_text(raw)
    assert decoded == expected
    assert "ol" not in (decoded.problem or "")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+380501234567", "UA", "380501234567"),
        ("+38 (050) 123-45-67", "UA", "380501234567"),
        ("+38.050.123.45.67", None, "380501234567"),
        ("00380501234567", None, "380501234567"),
        ("050 123 45 67", "UA", "380501234567"),
        ("(050) 123-4567", "UA", "380501234567"),
        ("+1 (415) 555-2671", "UA", "14155552671"),
        ("415-555-2671", "US", "14155552671"),
        ("+44 20 7946 0958", None, "442079460958"),
    ],
)
def test_phone_becomes_international_digits(raw, region, expected):
    assert normalize_phone(raw, region) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("12-34", "UA"),
        ("not a phone", "UA"),
        ("050 123 45 67", None),  # local number and no default region
        ("+380 12", "UA"),
        ("+999 123 456 789", "UA"),
    ],
)
def test_invalid_phone_is_refused_with_reason(raw, region):
    normalized = normalize_phone(raw, region)
    assert normalized.value is None
    assert normalized.problem and "phone" in normalized.problem
    assert raw not in normalized.problem  # the reason is masked


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_absent_phone_is_no_problem(raw):
    assert normalize_phone(raw, "UA") == (None, None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user@example.com", "user@example.com"),
        ("  User.Name+tag@Example.COM ", "user.name+tag@example.com"),
        ("ÜSER@bücher.de", "üser@bücher.de"),
    ],
)
def test_email_is_trimmed_lowercased(raw, expected):
    assert normalize_email(raw) == (expected, None)


@pytest.mark.parametrize("raw", ["broken@", "no-at-sign", "a@b", "two@@example.com", "x y@z.com"])
def test_invalid_email_is_refused_with_masked_reason(raw):
    normalized = normalize_email(raw)
    assert normalized.value is None
    assert normalized.problem.startswith("email ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(5, 5), ("42", 42), (" 7 ", 7), (12.0, 12), ("9007199254740993", 9007199254740993)],
)
def test_contact_id_positive_integer(raw, expected):
    assert normalize_contact_id(raw) == (expected, None)


@pytest.mark.parametrize("raw", [0, -3, "abc", "1.5"])
def test_contact_id_invalid(raw):
    assert normalize_contact_id(raw).value is None
    assert "contactId" in normalize_contact_id(raw).problem


def test_external_id_keeps_quotes_and_sql():
    raw = " O'Brien\"; DROP TABLE crm_contacts;-- "
    assert normalize_external_id(raw).value == raw.strip()


def test_masks_hide_most_of_the_value():
    assert mask_email("user@example.com") == "u***@example.com"
    assert mask_phone("+380501234567") == "***567"


def _email_corpus(count: int = 20_000) -> list[str]:
    """Addresses near the edges: odd characters, dots, hyphens, lengths, special-use names."""
    import random

    rng = random.Random(42)
    odd = [*"az09.-_+=%é! ", "..", "--", "xn--"]
    plain = [*"abz09abz09abz09abz09", ".", "-", "_", "+"]
    tlds = ["com", "ua", "c", "123", "test", "local", "example", "co", "xn--p1ai", "a-b", "io"]

    def word(alphabet: list[str], longest: int) -> str:
        size = rng.randint(0, longest if rng.random() < 0.05 else 8)
        return "".join(rng.choice(alphabet) for _ in range(size))

    corpus = []
    for _ in range(count):
        alphabet = plain if rng.random() < 0.7 else odd
        labels = [word(alphabet, 66) for _ in range(rng.randint(1, 3))]
        corpus.append(f"{word(alphabet, 70)}@{'.'.join([*labels, rng.choice(tlds)])}")
    return corpus


def test_plain_email_fast_path_agrees_with_email_validator():
    from email_validator import EmailNotValidError, validate_email

    from dagster_project.core.emails import plain_email

    fast = 0
    for address in _email_corpus():
        if not plain_email(address):
            continue
        fast += 1
        try:
            normalized = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise AssertionError(
                f"fast path accepted {address!r}, email-validator: {exc}"
            ) from None
        assert normalized == address
    assert fast > 1_000  # the corpus exercises the fast path, not only the fallback
