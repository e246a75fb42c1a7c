"""The identifier rules a whole column at a time (``normalize_all``, ``normalize_column``).

Each rule is called once per distinct value, and for short values the call (the decode check, the
trim, a result object) costs more than the rule itself. A shortcut answers, for a whole list at
once, the values whose shape settles the rule's answer, exactly as the rule would (tests compare
the two on generated corpora and edge cases); the rule itself answers the rest. Answers are
(value, problem) pairs, as ``Normalized`` is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.core.decoding import Normalized
from dagster_project.core.emails import normalize_email, plain_email, plain_emails
from dagster_project.core.ids import (
    MAX_EXTERNAL_ID_LENGTH,
    normalize_chat_id,
    normalize_contact_id,
    normalize_external_id,
)
from dagster_project.core.phones import NATIVE_SHAPE, check_phones, normalize_phone, phone_library

Answer = tuple[object, str | None]  # (value, problem), as Normalized
Shortcut = Callable[..., list[Answer | None]]

# Chat ids already in canonical form: what ``normalize_chat_id`` returns unchanged. At most 18
# digits, so always within MAX_CHAT_ID; no leading zero, so never zero and never rewritten.
_CANONICAL_CHAT_ID = re.compile(r"-?[1-9][0-9]{0,17}")

# Values ``normalize_contact_id`` and ``normalize_external_id`` keep as they are: ASCII digits
# without a leading zero; printable ASCII with no space at either end (so nothing to trim and
# nothing undecodable, see decode_text), at most MAX_EXTERNAL_ID_LENGTH characters.
_CANONICAL_CONTACT_ID = re.compile(r"[1-9][0-9]{0,17}")
_KEPT_EXTERNAL_ID = re.compile(rf"[!-~](?:[ -~]{{0,{MAX_EXTERNAL_ID_LENGTH - 2}}}[!-~])?")
# Rules whose answer the shapes above settle, for a column of Arrow text (see _arrow_answers).
_ARROW_SHAPES = {
    normalize_chat_id: _CANONICAL_CHAT_ID,
    normalize_contact_id: _CANONICAL_CONTACT_ID,
    normalize_external_id: _KEPT_EXTERNAL_ID,
}

# White space ``str.strip`` removes and Arrow can be told to: around a plain address (which
# begins and ends with neither), both trims end at the same characters.
_ASCII_SPACE = " \t\n\r\x0b\x0c"


def _arrow_answers(
    values: pa.Array, rule: Callable[..., Normalized]
) -> tuple[np.ndarray, np.ndarray] | None:
    """For a whole column of Arrow text (valid UTF-8, so never undecodable): which values
    ``rule`` accepts by their shape alone, and its answers for those, as objects; None for a
    rule without such a shortcut. RE2 over the column spares the values a trip through Python."""
    if rule is normalize_email:
        lowered = pc.ascii_lower(pc.utf8_trim(values, _ASCII_SPACE))
        answered = plain_emails(lowered)
        return answered, lowered.filter(answered).to_numpy(zero_copy_only=False)
    shape = _ARROW_SHAPES.get(rule)
    if shape is None:
        return None
    answered = np.asarray(
        pc.match_substring_regex(values, f"^(?:{shape.pattern})$").fill_null(False)
    )
    answers = values.filter(answered)
    if rule is normalize_contact_id:
        return answered, answers.cast(pa.int64()).to_numpy().astype(object)
    return answered, answers.to_numpy(zero_copy_only=False)


def _ascii_shaped(values: list[object], shape: re.Pattern[str]) -> list[bool]:
    """Which values are text matching ``shape`` in full. A list of text only, nearly always, is
    matched by Arrow's RE2 at once (classes of ASCII characters mean the same to both)."""
    if set(map(type, values)) == {str}:
        try:
            text = pa.array(values, type=pa.string())
        except (pa.ArrowException, UnicodeError):  # lone surrogates: see decode_text
            pass
        else:
            shaped = pc.match_substring_regex(text, f"^(?:{shape.pattern})$")
            return shaped.to_numpy(zero_copy_only=False).tolist()
    return [type(v) is str and shape.fullmatch(v) is not None for v in values]


def _chat_id_shortcut(values: list[object]) -> list[Answer | None]:
    shaped = _ascii_shaped(values, _CANONICAL_CHAT_ID)
    return [(v, None) if ok else None for v, ok in zip(values, shaped, strict=True)]


def _contact_id_shortcut(values: list[object]) -> list[Answer | None]:
    shaped = _ascii_shaped(values, _CANONICAL_CONTACT_ID)
    return [(int(v), None) if ok else None for v, ok in zip(values, shaped, strict=True)]  # type: ignore[call-overload]


def _external_id_shortcut(values: list[object]) -> list[Answer | None]:
    shaped = _ascii_shaped(values, _KEPT_EXTERNAL_ID)
    return [(v, None) if ok else None for v, ok in zip(values, shaped, strict=True)]


def _email_shortcut(values: list[object]) -> list[Answer | None]:
    """Plain addresses once trimmed and lowercased: undecodable text never is one."""
    answers: list[Answer | None] = []
    for raw in values:
        text = raw.strip().lower() if type(raw) is str else ""
        answers.append((text, None) if plain_email(text) else None)
    return answers


def _phone_shortcut(values: list[object], default_region: str | None) -> list[Answer | None]:
    """Text of the native shape (ASCII, so always decodable) goes straight to the engine."""
    native = NATIVE_SHAPE.fullmatch
    texts = [raw.strip() if type(raw) is str else "" for raw in values]
    shaped = [i for i, text in enumerate(texts) if text and native(text)]
    checked = check_phones(phone_library(), [texts[i] for i in shaped], default_region)
    answers: list[Answer | None] = [None] * len(values)
    for i, answer in zip(shaped, checked, strict=True):
        answers[i] = answer
    return answers


_SHORTCUTS: dict[Callable[..., Normalized], Shortcut] = {
    normalize_chat_id: _chat_id_shortcut,
    normalize_contact_id: _contact_id_shortcut,
    normalize_external_id: _external_id_shortcut,
    normalize_phone: _phone_shortcut,
    normalize_email: _email_shortcut,
}


def normalize_all(
    values: list[object], rule: Callable[..., Normalized], *args: object
) -> tuple[list[object], list[str | None]]:
    """``rule(value, *args)`` of every value, as a list of values and a list of problems."""
    shortcut = _SHORTCUTS.get(rule)
    answers = shortcut(values, *args) if shortcut else [None] * len(values)
    for i, answer in enumerate(answers):
        if answer is None:
            answers[i] = rule(values[i], *args)
    return [a[0] for a in answers], [a[1] for a in answers]


def normalize_column(
    values: pd.Series, rule: Callable[..., Normalized], *args: object
) -> tuple[pd.Series, pd.Series]:
    """``rule(value, *args)`` of every value of a column, as (values, problems) Series.

    Values of Arrow text whose shape settles the rule's answer (nearly every chat id, customer
    id, contact id and email) are answered for the whole column first, so only the others are
    factorized and made Python objects for the rule.
    """
    arrow = _arrow_text(values)
    shortcut = None if arrow is None else _arrow_answers(arrow, rule)
    if shortcut is None:
        new_values, new_problems = _by_distinct_value(values, rule, *args)
    else:
        answered, answers = shortcut
        rest_values, rest_problems = _by_distinct_value(values[~answered], rule, *args)
        new_values = np.empty(len(values), dtype=object)
        new_values[answered] = answers
        new_values[~answered] = rest_values
        new_problems = np.full(len(values), None, dtype=object)
        new_problems[~answered] = rest_problems
    return (
        pd.Series(new_values, index=values.index, dtype=object),
        pd.Series(new_problems, index=values.index, dtype=object),
    )


def _by_distinct_value(
    values: pd.Series, rule: Callable[..., Normalized], *args: object
) -> tuple[np.ndarray, np.ndarray]:
    """``normalize_all`` of the distinct values, spread back over the rows (values, problems)."""
    # one hash pass: each row's position among the distinct values (-1 where missing, which
    # picks the trailing None below); unique() plus an Index look-up took four times as long
    where, distinct = pd.factorize(values)
    normalized, problems = normalize_all(distinct.tolist(), rule, *args)
    return (
        np.array([*normalized, None], dtype=object)[where],
        np.array([*problems, None], dtype=object)[where],
    )


def _arrow_text(values: pd.Series) -> pa.Array | None:
    """The column as Arrow text when it is stored so (the staged extract's columns), else None."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return pa.array(values.array)
    return None
