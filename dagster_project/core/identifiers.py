"""Normalization of single contact identifiers.

eSputnik only ever appends tokens, so an identifier that is wrong on the first push stays wrong:
each function returns either a canonical value or the reason it was refused.

Phone numbers are checked by ``rphonenumbers`` (the phonenumbers API on a Rust core, about ten
times faster) when it is installed and gives phonenumbers' answers on ``PHONE_PROBES``;
otherwise by ``phonenumbers``, which stays the reference. ``PHONE_ENGINE`` names the one in use.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
from collections.abc import Callable
from functools import lru_cache, wraps
from types import ModuleType
from typing import NamedTuple

import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

logger = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 255
MAX_EXTERNAL_ID_LENGTH = 64
EMAIL_CACHE_SIZE = 65_536  # email-validator verdicts kept; ~20 MB at the most


class Normalized(NamedTuple):
    """A normalized value, or None with a short reason why it was refused."""

    value: str | int | None
    problem: str | None = None


ABSENT = Normalized(None)


def _trimmed(raw: object) -> str | None:
    """The value as trimmed text; None when it is blank (None, NA, NaN or only white space).
    Called for every distinct value of every identifier, so strings are answered first."""
    if isinstance(raw, str):
        return raw.strip() or None
    if raw is None or raw is pd.NA or raw is pd.NaT or (isinstance(raw, float) and math.isnan(raw)):
        return None
    return str(raw).strip()


# A Telegram chat id is a signed 64-bit integer; negative ids are groups and channels.
_CHAT_ID_TEXT = re.compile(r"([+-]?[0-9]+)(?:\.0*)?")
MAX_CHAT_ID = 2**63 - 1


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


# What a byte that is not UTF-8 becomes when text is decoded with errors="replace".
UNDECODABLE = "\ufffd"


def decoded(rule: Callable[..., Normalized]) -> Callable[..., Normalized]:
    """``rule`` with values that are not UTF-8 text refused first (see ``decode_text``): every
    identifier rule takes text, so this is where that refusal lives."""

    @wraps(rule)
    def checked(raw: object, *args: object, **kwargs: object) -> Normalized:
        text = decode_text(raw)
        return text if text.problem else rule(text.value, *args, **kwargs)

    return checked


def normalize_chat_id(raw: object) -> Normalized:
    """The token: a Telegram chat id as integer text ('-100123'), or None with a reason.

    Chat ids arrive as text, integers, or floats (pandas turns an integer column with a NULL
    into floats; SQLite's TRIM(900000001.0) is '900000001.0'): every integral form becomes the
    same token, so the ledger and eSputnik never see '900000001.0'. Anything else is refused.
    """
    if _trimmed(raw) is None:
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

# Chat ids already in canonical form: what ``normalize_chat_id`` returns unchanged. At most 18
# digits, so always within MAX_CHAT_ID; no leading zero, so never zero and never rewritten.
_CANONICAL_CHAT_ID = re.compile(r"-?[1-9][0-9]{0,17}")


@decoded
def normalize_contact_id(raw: object) -> Normalized:
    """eSputnik's numeric contact id: a positive integer or nothing."""
    text = _trimmed(raw)
    if text is None:
        return ABSENT
    if text.endswith(".0"):  # integers that travelled through a float column
        text = text[:-2]
    if not text.isdigit() or int(text) <= 0:
        return Normalized(None, f"contactId {raw!r} is not a positive integer")
    return Normalized(int(text))


@decoded
def normalize_external_id(raw: object) -> Normalized:
    """The CRM customer id, trimmed, kept verbatim otherwise (quotes and all)."""
    value = _trimmed(raw)
    if value is None:
        return ABSENT
    if len(value) > MAX_EXTERNAL_ID_LENGTH:
        return Normalized(None, f"externalCustomerId longer than {MAX_EXTERNAL_ID_LENGTH}")
    return Normalized(value)


@decoded
def normalize_phone(raw: object, default_region: str | None) -> Normalized:
    """International digits without '+', e.g. '380501234567'.

    Accepts '+', spaces, dashes, dots and parentheses; a number without a country code is read
    in ``default_region`` (ISO 3166 alpha-2), and refused when no region is configured.
    """
    text = _trimmed(raw)
    if text is None:
        return ABSENT
    library = _phone_library() if _NATIVE_SHAPE.fullmatch(text) else phonenumbers
    return _check_phone(library, text, default_region)


def _check_phone(library: ModuleType, text: str, default_region: str | None) -> Normalized:
    """``normalize_phone`` of trimmed text with one phone library; the engines must agree here."""
    return Normalized(*_check_phones(library, [text], default_region)[0])


def _check_phones(
    library: ModuleType, texts: list[str], default_region: str | None
) -> list[tuple[str | None, str | None]]:
    """``_check_phone`` of each text, as (value, problem) pairs: one loop for a whole column."""
    parse, is_valid, format_number = library.parse, library.is_valid_number, library.format_number
    refused, e164 = library.NumberParseException, library.PhoneNumberFormat.E164
    answers: list[tuple[str | None, str | None]] = []
    for text in texts:
        if text.startswith("00"):
            text = "+" + text[2:]
        try:
            number = parse(text, None if text.startswith("+") else default_region)
        except refused as exc:
            answers.append((None, f"phone {mask_phone(text)!r}: {exc._msg}"))
            continue
        if is_valid(number):
            answers.append((format_number(number, e164)[1:], None))
        else:
            answers.append((None, f"phone {mask_phone(text)!r} is not a valid number"))
    return answers


# What the native engine is given: one leading '+', ASCII digits and the usual separators, the
# shape of nearly every stored number. Elsewhere (extensions, '#', ';', ',', '++', letters) it
# refuses the same numbers for other reasons than phonenumbers, so those go to phonenumbers.
_NATIVE_SHAPE = re.compile(r"\+?[0-9 ().-]*")

# Checked on first use: a native engine that answers one of these differently from phonenumbers
# is not used. Every shape the extract brings, and the edges where a port is likeliest to slip.
PHONE_PROBES: tuple[tuple[str, str | None], ...] = (
    ("+380501234567", "UA"),
    ("+38 (050) 123-45-67", "UA"),
    ("0501234567", "UA"),
    ("(050) 123-4567", "UA"),
    ("00380501234567", None),
    ("380501234567", "UA"),
    ("+38.050.123.45.67", None),
    ("050 123 45 67", None),
    ("+380 12 34", "UA"),
    ("+380501", "UA"),
    ("12-34", "UA"),
    ("phone", "UA"),
    ("n/a", "UA"),
    ("+", "UA"),
    ("+999 123 456 789", "UA"),
    ("+1 (415) 555-2671", "UA"),
    ("415-555-2671", "US"),
    ("1-800-FLOWERS", "US"),
    ("+44 20 7946 0958", None),
    ("020 7946 0958", "GB"),
    ("07400 123456", "GB"),
    ("+49 30 123456", "DE"),
    ("030 1234567", "DE"),
    ("+48 512 345 678", "PL"),
    ("+7 912 345-67-89", "RU"),
    ("8 (912) 345-67-89", "RU"),
    ("+86 138 0013 8000", None),
    ("+39 06 6982 1234", None),
    ("+54 9 11 1234-5678", None),
    ("+52 1 55 1234 5678", None),
    ("+380 50 123 45 67 ext. 12", "UA"),
    ("tel:+380501234567", "UA"),
    ("\uff10\uff15\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17", "UA"),
    ("9" * 300, "UA"),
    ("0501234567", "ZZ"),
)
NATIVE_PHONE_LIBRARY = "rphonenumbers"


class _PhoneEngine(NamedTuple):
    name: str
    library: ModuleType


def choose_phone_engine(candidate: str = NATIVE_PHONE_LIBRARY) -> _PhoneEngine:
    """``candidate`` when it imports and answers every probe as phonenumbers does; else
    phonenumbers (a disagreement is logged: results must never depend on the engine)."""
    reference = _PhoneEngine("phonenumbers", phonenumbers)
    try:
        library = importlib.import_module(candidate)
    except ImportError:
        return reference
    for text, region in PHONE_PROBES:
        try:
            native = _check_phone(library, text, region)
        except Exception as exc:  # any failure of a young engine means: not this one
            native = Normalized(None, f"{type(exc).__name__}: {exc}")
        expected = _check_phone(phonenumbers, text, region)
        if native != expected:
            logger.warning(
                "%s disagrees with phonenumbers on %r (region %s): %r, not %r; "
                "checking phones with phonenumbers",
                candidate,
                text,
                region,
                native,
                expected,
            )
            return reference
    return _PhoneEngine(candidate, library)


_phone_engine: _PhoneEngine | None = None


def use_phone_engine(engine: _PhoneEngine | None) -> None:
    """Check phones with ``engine`` from now on (None: choose again on next use); for the bench
    and the tests, which measure or compare both."""
    global _phone_engine
    _phone_engine = engine


def _phone_library() -> ModuleType:
    global _phone_engine
    if _phone_engine is None:  # on first use: the probes take ~0.1 s, not every import's due
        _phone_engine = choose_phone_engine()
    return _phone_engine.library


def phone_engine_name() -> str:
    """The phone library in use ('rphonenumbers' or 'phonenumbers'), for a run's log."""
    _phone_library()
    return _phone_engine.name


def __getattr__(name: str) -> str:
    """``PHONE_ENGINE``: ``phone_engine_name()``, chosen on first access, not at import."""
    if name == "PHONE_ENGINE":
        return phone_engine_name()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


@decoded
def normalize_email(raw: object) -> Normalized:
    """Trimmed, lowercased, syntactically valid address (no DNS look-ups)."""
    text = _trimmed(raw)
    if text is None:
        return ABSENT
    text = text.lower()
    if _plain_email(text):
        return Normalized(text)
    return _validated_email(text)


@lru_cache(maxsize=EMAIL_CACHE_SIZE)
def _validated_email(text: str) -> Normalized:
    """email-validator's verdict, ~50 µs a value (most of them refusals): each distinct value is
    checked once, however many buckets and runs of this process it comes back in."""
    try:
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return Normalized(None, f"email {mask_email(text)!r}: {exc}")
    return Normalized(info.normalized.lower())


# Whole columns. Each rule above is called once per distinct value, and for short values the
# call (the decode check, the trim, a result object) costs more than the rule itself. A shortcut
# answers, for a whole list at once, the values whose shape settles the rule's answer, exactly as
# the rule would (tests compare the two on generated corpora and edge cases); the rule itself
# answers the rest. Answers are (value, problem) pairs, as ``Normalized`` is.
Answer = tuple[object, str | None]
Shortcut = Callable[..., list[Answer | None]]

# Values ``normalize_contact_id`` and ``normalize_external_id`` keep as they are: ASCII digits
# without a leading zero; printable ASCII with no space at either end (so nothing to trim and
# nothing undecodable, see decode_text), at most MAX_EXTERNAL_ID_LENGTH characters.
_CANONICAL_CONTACT_ID = re.compile(r"[1-9][0-9]{0,17}")
_KEPT_EXTERNAL_ID = re.compile(rf"[!-~](?:[ -~]{{0,{MAX_EXTERNAL_ID_LENGTH - 2}}}[!-~])?")


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
        answers.append((text, None) if _plain_email(text) else None)
    return answers


def _phone_shortcut(values: list[object], default_region: str | None) -> list[Answer | None]:
    """Text of the native shape (ASCII, so always decodable) goes straight to the engine."""
    native = _NATIVE_SHAPE.fullmatch
    texts = [raw.strip() if type(raw) is str else "" for raw in values]
    shaped = [i for i, text in enumerate(texts) if text and native(text)]
    checked = _check_phones(_phone_library(), [texts[i] for i in shaped], default_region)
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
