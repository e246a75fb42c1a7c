"""The rules of the id columns: the Telegram chat id (the token), eSputnik's contact id and the
CRM customer id."""

from __future__ import annotations

import re

from dagster_project.core.decoding import Normalized, decode_text, decoded, trimmed

MAX_TOKEN_LENGTH = 255
MAX_EXTERNAL_ID_LENGTH = 64

# A Telegram chat id is a signed 64-bit integer; negative ids are groups and channels.
_CHAT_ID_TEXT = re.compile(r"([+-]?[0-9]+)(?:\.0*)?")
MAX_CHAT_ID = 2**63 - 1


def normalize_chat_id(raw: object) -> Normalized:
    """The token: a Telegram chat id as integer text ('-100123'), or None with a reason.

    Chat ids arrive as text, integers, or floats (pandas turns an integer column with a NULL
    into floats; SQLite's TRIM(900000001.0) is '900000001.0'): every integral form becomes the
    same token, so the ledger and eSputnik never see '900000001.0'. Anything else is refused.
    """
    if trimmed(raw) is None:
        return Normalized(None, "empty token")
    decoded = decode_text(raw)
    if decoded.problem:
        return Normalized(None, f"chat id is {decoded.problem}")
    raw = decoded.value
    if isinstance(raw, bool):
        return Normalized(None, "chat id is a boolean, not an integer")
    if isinstance(raw, float) and not raw.is_integer():
        return Normalized(None, "chat id is not an integer")
    if isinstance(raw, float) and abs(raw) >= 2**53:  # beyond exact integers in a float
        return Normalized(None, "chat id out of range")
    if isinstance(raw, str):
        match = _CHAT_ID_TEXT.fullmatch(raw.strip())
        if match is None:
            return Normalized(None, "chat id is not an integer")
        raw = match.group(1)
    try:
        number = int(raw)  # ints, integral floats, numpy and Decimal values, checked text
    except (TypeError, ValueError, OverflowError):
        return Normalized(None, "chat id is not an integer")
    if not isinstance(raw, str) and number != raw:  # Decimal('1.5'), numpy floats
        return Normalized(None, "chat id is not an integer")
    if abs(number) > MAX_CHAT_ID or number == 0:
        return Normalized(None, "chat id out of range")
    return Normalized(str(number))


@decoded
def normalize_contact_id(text: str) -> Normalized:
    """eSputnik's numeric contact id: a positive integer or nothing."""
    if text.endswith(".0"):  # integers that travelled through a float column
        text = text[:-2]
    if not text.isdigit() or int(text) <= 0:
        return Normalized(None, f"contactId {text!r} is not a positive integer")
    return Normalized(int(text))


@decoded
def normalize_external_id(text: str) -> Normalized:
    """The CRM customer id, trimmed, kept verbatim otherwise (quotes and all)."""
    if len(text) > MAX_EXTERNAL_ID_LENGTH:
        return Normalized(None, f"externalCustomerId longer than {MAX_EXTERNAL_ID_LENGTH}")
    return Normalized(text)
