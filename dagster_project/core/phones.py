"""Phone numbers, and the library that checks them.

Phone numbers are checked by ``rphonenumbers`` (the phonenumbers API on a Rust core, about ten
times faster) when it is installed and gives phonenumbers' answers on ``PHONE_PROBES``;
otherwise by ``phonenumbers``, which stays the reference. ``phone_engine_name()`` names the one
in use.
"""

from __future__ import annotations

import importlib
import logging
import re
from types import ModuleType
from typing import NamedTuple

import phonenumbers

from dagster_project.core.decoding import Normalized, decoded
from dagster_project.core.masking import mask_phone

logger = logging.getLogger(__name__)


@decoded
def normalize_phone(text: str, default_region: str | None) -> Normalized:
    """International digits without '+', e.g. '380501234567'.

    Accepts '+', spaces, dashes, dots and parentheses; a number without a country code is read
    in ``default_region`` (ISO 3166 alpha-2), and refused when no region is configured.
    """
    library = phone_library() if NATIVE_SHAPE.fullmatch(text) else phonenumbers
    return _check_phone(library, text, default_region)


def _check_phone(library: ModuleType, text: str, default_region: str | None) -> Normalized:
    """``normalize_phone`` of trimmed text with one phone library; the engines must agree here."""
    return Normalized(*check_phones(library, [text], default_region)[0])


def check_phones(
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
NATIVE_SHAPE = re.compile(r"\+?[0-9 ().-]*")

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


class PhoneEngine(NamedTuple):
    """A phone library and the name it is logged by."""

    name: str
    library: ModuleType


def choose_phone_engine(candidate: str = NATIVE_PHONE_LIBRARY) -> PhoneEngine:
    """``candidate`` when it imports and answers every probe as phonenumbers does; else
    phonenumbers (a disagreement is logged: results must never depend on the engine)."""
    reference = PhoneEngine("phonenumbers", phonenumbers)
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
    return PhoneEngine(candidate, library)


_phone_engine: PhoneEngine | None = None


def use_phone_engine(engine: PhoneEngine | None) -> None:
    """Check phones with ``engine`` from now on (None: choose again on next use); for the bench
    and the tests, which measure or compare both."""
    global _phone_engine
    _phone_engine = engine


def phone_library() -> ModuleType:
    """The library of the engine in use, chosen on first use."""
    global _phone_engine
    if _phone_engine is None:  # on first use: the probes take ~0.1 s, not every import's due
        _phone_engine = choose_phone_engine()
    return _phone_engine.library


def phone_engine_name() -> str:
    """The phone library in use ('rphonenumbers' or 'phonenumbers'), for a run's log."""
    phone_library()
    return _phone_engine.name
