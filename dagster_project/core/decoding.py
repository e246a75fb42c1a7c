"""What every identifier rule shares: the answer type, the trim, and the refusal of text that is
not UTF-8.

eSputnik only ever appends tokens, so an identifier that is wrong on the first push stays wrong:
each rule returns either a canonical value or the reason it was refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import NamedTuple

import pandas as pd


class Normalized(NamedTuple):
    """A normalized value, or None with a short reason why it was refused."""

    value: str | int | None
    problem: str | None = None


ABSENT = Normalized(None)


def trimmed(raw: object) -> str | None:
    """The value as trimmed text; None when it is blank (None, NA, NaN or only white space).
    Called for every distinct value of every identifier, so strings are answered first."""
    if isinstance(raw, str):
        return raw.strip() or None
    if raw is None or raw is pd.NA or raw is pd.NaT or (isinstance(raw, float) and math.isnan(raw)):
        return None
    return str(raw).strip()


# What a byte that is not UTF-8 becomes when text is decoded with errors="replace".
UNDECODABLE = "\ufffd"


def lenient_text(raw: bytes) -> str:
    """Stored text as the state database's rows are read: a byte that is not UTF-8 becomes
    ``UNDECODABLE``, which ``decode_text`` refuses with a reason, instead of stopping the run."""
    return raw.decode("utf-8", "replace")


def decode_text(raw: object) -> Normalized:
    """A CRM value as text, or None with a reason when its bytes are not UTF-8.

    One undecodable byte in a CRM field must cost that field (or, for the chat id, that row),
    never the run. Bytes come from drivers that do not decode (a PostgreSQL database in
    SQL_ASCII); U+FFFD from SQLite, whose text the state engine decodes with ``errors="replace"``
    (resources.py); lone surrogates from ``errors="surrogateescape"``. The reason names the
    position, never the value: it is personal data.
    """
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            return Normalized(bytes(raw).decode("utf-8"))
        except UnicodeDecodeError as exc:
            return Normalized(None, f"not UTF-8 text (byte {exc.start + 1} of {len(exc.object)})")
    if isinstance(raw, str):
        if UNDECODABLE in raw:
            return Normalized(
                None, f"not UTF-8 text (character {raw.index(UNDECODABLE) + 1} of {len(raw)})"
            )
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            return Normalized(None, f"not UTF-8 text (character {exc.start + 1} of {len(raw)})")
    return Normalized(raw)  # type: ignore[arg-type]


def decoded(rule: Callable[..., Normalized]) -> Callable[..., Normalized]:
    """``rule`` over trimmed text only: values that are not UTF-8 text are refused first (see
    ``decode_text``) and blank ones are absent, so every identifier rule starts from the same
    place and this is where those two answers live."""

    @wraps(rule)
    def checked(raw: object, *args: object, **kwargs: object) -> Normalized:
        text = decode_text(raw)
        if text.problem:
            return text
        value = trimmed(text.value)
        return ABSENT if value is None else rule(value, *args, **kwargs)

    return checked
