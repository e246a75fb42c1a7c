"""Normalization of single contact identifiers.

eSputnik only ever appends tokens, so an identifier that is wrong on the first push stays wrong:
each function returns either a canonical value or the reason it was refused.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import pandas as pd
import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

MAX_TOKEN_LENGTH = 255
MAX_EXTERNAL_ID_LENGTH = 64


class Normalized(NamedTuple):
    """A normalized value, or None with a short reason why it was refused."""

    value: str | int | None
    problem: str | None = None


def _blank(raw: object) -> bool:
    if isinstance(raw, str):  # nearly every value: answered first
        return not raw.strip()
    if raw is None or raw is pd.NA or raw is pd.NaT:
        return True
    return isinstance(raw, float) and math.isnan(raw)


# A Telegram chat id is a signed 64-bit integer; negative ids are groups and channels.
_CHAT_ID_TEXT = re.compile(r"([+-]?[0-9]+)(?:\.0*)?")
MAX_CHAT_ID = 2**63 - 1


def decode_text(raw: object) -> Normalized:
    """A CRM value as text, or None with a reason when its bytes are not UTF-8.

    One undecodable byte in a CRM field must cost that field (or, for the chat id, that row),
    never the run. Bytes come from drivers that do not decode (a PostgreSQL database in
    SQL_ASCII); lone surrogates from reading with ``errors="surrogateescape"`` (SQLite). The
    reason names the byte's position, never the value: it is personal data.
    """
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            return Normalized(bytes(raw).decode("utf-8"))
        except UnicodeDecodeError as exc:
            return Normalized(None, f"not UTF-8 text (byte {exc.start + 1} of {len(exc.object)})")
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            return Normalized(None, f"not UTF-8 text (character {exc.start + 1} of {len(raw)})")
    return Normalized(raw)  # type: ignore[arg-type]


def normalize_chat_id(raw: object) -> Normalized:
    """The token: a Telegram chat id as integer text ('-100123'), or None with a reason.

    Chat ids arrive as text, integers, or floats (pandas turns an integer column with a NULL
    into floats; SQLite's TRIM(900000001.0) is '900000001.0'): every integral form becomes the
    same token, so the ledger and eSputnik never see '900000001.0'. Anything else is refused.
    """
    if _blank(raw):
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


# The token is the normalized chat id; the older name stays for existing callers.
normalize_token = normalize_chat_id


def normalize_contact_id(raw: object) -> Normalized:
    """eSputnik's numeric contact id: a positive integer or nothing."""
    if _blank(raw):
        return Normalized(None)
    text = str(raw).strip()
    if text.endswith(".0"):  # integers that travelled through a float column
        text = text[:-2]
    if not text.isdigit() or int(text) <= 0:
        return Normalized(None, f"contactId {raw!r} is not a positive integer")
    return Normalized(int(text))


def normalize_external_id(raw: object) -> Normalized:
    """The CRM customer id, trimmed, kept verbatim otherwise (quotes and all)."""
    if _blank(raw):
        return Normalized(None)
    value = str(raw).strip()
    if len(value) > MAX_EXTERNAL_ID_LENGTH:
        return Normalized(None, f"externalCustomerId longer than {MAX_EXTERNAL_ID_LENGTH}")
    return Normalized(value)


def normalize_phone(raw: object, default_region: str | None) -> Normalized:
    """International digits without '+', e.g. '380501234567'.

    Accepts '+', spaces, dashes, dots and parentheses; a number without a country code is read
    in ``default_region`` (ISO 3166 alpha-2), and refused when no region is configured.
    """
    if _blank(raw):
        return Normalized(None)
    text = str(raw).strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        return Normalized(None, f"phone {mask_phone(text)!r}: {exc._msg}")
    if not phonenumbers.is_valid_number(number):
        return Normalized(None, f"phone {mask_phone(text)!r} is not a valid number")
    return Normalized(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:])


# Plain ASCII addresses that email-validator accepts unchanged: checked by this expression in
# about a microsecond instead of ~50. Anything else (unicode, quoting, punycode, odd characters)
# goes through email-validator itself; tests compare the two on a generated corpus.
_PLAIN_EMAIL = re.compile(
    r"(?P<local>[a-z0-9_%+=-]+(?:\.[a-z0-9_%+=-]+)*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,63}))"
)


def _plain_email(text: str) -> bool:
    match = _PLAIN_EMAIL.fullmatch(text)
    return bool(
        match
        and len(text) <= 254
        and len(match["local"]) <= 64
        and "--" not in match["domain"]
        and match["tld"] not in SPECIAL_USE_DOMAIN_NAMES
    )


def normalize_email(raw: object) -> Normalized:
    """Trimmed, lowercased, syntactically valid address (no DNS look-ups)."""
    if _blank(raw):
        return Normalized(None)
    text = str(raw).strip().lower()
    if _plain_email(text):
        return Normalized(text)
    try:
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return Normalized(None, f"email {mask_email(text)!r}: {exc}")
    return Normalized(info.normalized.lower())


def mask_email(email: str) -> str:
    """'user@example.com' -> 'u***@example.com', for logs and metadata."""
    local, sep, domain = email.partition("@")
    return f"{local[:1]}***{sep}{domain}" if sep else f"{email[:1]}***"


def mask_phone(phone: str) -> str:
    """Last three digits only, for logs and metadata."""
    digits = [c for c in phone if c.isdigit()]
    return "***" + "".join(digits[-3:]) if len(digits) > 3 else "***"


_EMAIL_IN_TEXT = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
# Digit runs that may be phone numbers: nine or more digits, with the separators people write.
_PHONE_IN_TEXT = re.compile(r"(?<![\w-])\+?\d[\d ().-]{7,}\d(?![\w-])")
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BYTES_LITERAL = re.compile(r"""b(['"]).*?(?<!\\)\1""")
_ESCAPED_BYTES = re.compile(r"(?:\\x[0-9a-fA-F]{2})+|[\udc80-\udcff]+")


def _mask_digits(match: re.Match[str]) -> str:
    text = match.group(0)
    if sum(c.isdigit() for c in text) < 9 or _DATE_LIKE.match(text):
        return text
    return mask_phone(text)


def redact_personal_data(text: str) -> str:
    """``text`` with emails, phone-like digit runs and raw bytes masked: error messages quote
    the row that broke a statement, and they end up in alerts and the run history."""
    text = _BYTES_LITERAL.sub("b'***'", text)
    text = _ESCAPED_BYTES.sub("***", text)
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(_mask_digits, text)
