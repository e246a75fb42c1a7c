"""Personal data masked for logs, run metadata and alerts."""

from __future__ import annotations

import re


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
