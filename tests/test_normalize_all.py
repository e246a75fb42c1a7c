"""``normalize_all`` (shortcuts for whole columns) gives each rule's own answers, value by value."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from bench.validation import extract_rows
from dagster_project.core.column_rules import _arrow_answers, normalize_all, normalize_column
from dagster_project.core.emails import normalize_email
from dagster_project.core.ids import (
    MAX_EXTERNAL_ID_LENGTH,
    normalize_chat_id,
    normalize_contact_id,
    normalize_external_id,
)
from dagster_project.core.phones import normalize_phone

RULES = (normalize_chat_id, normalize_contact_id, normalize_external_id, normalize_email)

# Values near every edge of every shortcut: blanks, signs, zeros, lengths, floats, case,
# non-ASCII digits and letters, undecodable text and bytes, other types.
EDGES: list[object] = [
    "",
    " ",
    "\t\n",
    "\u00a0",
    "\u3000",
    "\x1c",
    "\x85",
    "0",
    "-0",
    "+0",
    "00",
    "01",
    "-01",
    "1",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1.0",
    "1.",
    "1.5",
    "1e3",
    "--1",
    "1-",
    "9" * 17,
    "9" * 18,
    "9" * 19,
    "-" + "9" * 18,
    "-" + "9" * 19,
    str(2**63 - 1),
    str(2**63),
    str(-(2**63) + 1),
    "\u0661\u0662",
    "\uff11\uff12",
    "12\ufffd",
    "\ufffd",
    "1\udc80",
    "a\udc80b",
    "x" * 63,
    "x" * 64,
    "x" * 65,
    " " + "x" * 64,
    "x" * 62 + " y",
    "a b",
    " a",
    "a ",
    "C000000001",
    '"quoted"',
    "user@example.com",
    " User@Example.COM ",
    "USER@EXAMPLE.COM",
    "u\u212a@example.com",
    "\u0130@example.com",
    "user@exa--mple.com",
    "user@example.local",
    "user@example.invalid",
    "a..b@example.com",
    ".a@example.com",
    "user@@example.com",
    "user@example",
    "a" * 64 + "@x.com",
    "a" * 65 + "@x.com",
    "user@" + "a" * 250 + ".com",
    "usér@example.com",
    "user@exämple.com",
    "user@xn--exmple-cua.com",
    "user+tag@example.com",
    "user@example.com\ufffd",
    "user@example.com\n",
    "\tUser@Example.Com\x0b",
    "\x1cuser@example.com",
    "user@example.com\u00a0",
    "123\n",
    "C42\n",
    "user@\udc80.com",
    "+380501234567",
    " +38 (050) 123-45-67 ",
    "0501234567",
    "00380501234567",
    "+",
    "+380 12 34",
    "12-34",
    "phone",
    "+380 50 123 45 67 ext. 12",
    "tel:+380501234567",
    "++380501234567",
    "\uff10\uff15\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17",
    "9" * 300,
    "+1 (415) 555-2671",
    "+380501234567\ufffd",
    1,
    0,
    -1,
    12.0,
    12.5,
    2.0**60,
    True,
    Decimal("12"),
    Decimal("1.5"),
    np.int64(7),
    np.float64(7.0),
    b"123",
    b"\xff12",
    bytearray(b"user@example.com"),
    pd.NA,
    None,
    float("nan"),
]


class _Text(str):
    """A str subclass: the shortcuts must leave it to the rule."""


def _generated(count: int, seed: int) -> list[object]:
    rng = random.Random(seed)
    alphabet = "0123456789 +-.()@aAzZ._\t\ufffd\u0661é"
    values: list[object] = []
    for _ in range(count):
        size = rng.choice((1, 2, 3, 5, 10, 13, 18, 19, 20, 64, 65))
        values.append("".join(rng.choice(alphabet) for _ in range(size)))
    return values


def _corpus(rows: int) -> list[object]:
    raw = extract_rows(rows, seed=7)
    columns = ("chat_id", "crm_customer_id", "esputnik_contact_id", "crm_email", "crm_phone")
    extract = [v for c in columns for v in raw[c].dropna().astype(object).unique().tolist()]
    return [*EDGES, _Text("123"), _Text("user@example.com"), *extract, *_generated(5_000, 3)]


def _encodable(value: object) -> bool:
    try:
        return type(value) is str and bool(value.encode("utf-8"))
    except UnicodeEncodeError:
        return False


@pytest.fixture(scope="module", params=["mixed", "text only", "text and a lone surrogate"])
def corpus(request) -> list[object]:
    """Every kind of value; text only (the shortcuts then match a whole list at once); the same
    with one value Arrow cannot hold."""
    values = _corpus(3_000)
    if request.param == "mixed":
        return values
    text = [v for v in values if _encodable(v)]
    return text if request.param == "text only" else [*text, "1\udc80"]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_shortcuts_answer_as_the_rule(corpus, rule):
    values, problems = normalize_all(corpus, rule)
    for raw, value, problem in zip(corpus, values, problems, strict=True):
        expected = rule(raw)
        assert (value, problem) == tuple(expected), raw
        assert type(value) is type(expected.value), raw


@pytest.mark.parametrize("region", ["UA", None, "US"])
def test_phone_shortcut_answers_as_the_rule(corpus, region):
    values, problems = normalize_all(corpus, normalize_phone, region)
    for raw, value, problem in zip(corpus, values, problems, strict=True):
        assert (value, problem) == tuple(normalize_phone(raw, region)), raw


def test_external_id_shortcut_stops_at_the_length_limit():
    values, problems = normalize_all(
        ["x" * MAX_EXTERNAL_ID_LENGTH, "x" * 65], normalize_external_id
    )
    assert values == ["x" * MAX_EXTERNAL_ID_LENGTH, None]
    assert problems[1] == f"externalCustomerId longer than {MAX_EXTERNAL_ID_LENGTH}"


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_arrow_answers_are_the_rules_own(rule):
    text = [v for v in _corpus(3_000) if _encodable(v)]
    answered, answers = _arrow_answers(pa.array(text, type=pa.large_string()), rule)
    assert answered.sum() > len(text) * 0.05  # the corpus reaches the shortcut
    for raw, answer in zip(np.array(text, dtype=object)[answered], answers, strict=True):
        expected = rule(raw)
        assert (answer, None) == tuple(expected), raw
        assert type(answer) is type(expected.value), raw


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_a_column_of_arrow_text_normalizes_as_one_of_objects(rule):
    text = [v for v in _corpus(3_000) if _encodable(v)]
    text = [*text, None, *text[:100], None]  # repeats and missing values
    arrow = pd.Series(text, dtype="string[pyarrow]")
    objects = pd.Series(text, dtype=object)
    got, expected = normalize_column(arrow, rule), normalize_column(objects, rule)
    for got_part, expected_part in zip(got, expected, strict=True):
        pd.testing.assert_series_equal(got_part, expected_part)
