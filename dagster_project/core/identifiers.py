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


def normalize_token(raw: object) -> Normalized:
    """The Telegram chat id, trimmed; blank or oversized ids are refused."""
    if _blank(raw):
        return Normalized(None, "empty token")
    token = str(raw).strip()
    if len(token) > MAX_TOKEN_LENGTH:
        return Normalized(None, f"token longer than {MAX_TOKEN_LENGTH} characters")
    return Normalized(token)


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
