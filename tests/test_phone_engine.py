"""The native phone engine against phonenumbers, the reference: same values, same reasons.

``rphonenumbers`` is young, so it is trusted only as far as this differential test reaches:
phonenumbers' own example numbers of every region, with their last digits redrawn and their
length changed, written in every shape an extract brings (international with and without '+',
'00', national with its trunk prefix, separators, letters and garbage) and read in several
default regions.
"""

from __future__ import annotations

import random
import sys
import types

import phonenumbers
import pytest

from dagster_project.core.decoding import Normalized
from dagster_project.core.phones import (
    NATIVE_SHAPE,
    PHONE_PROBES,
    PhoneEngine,
    _check_phone,
    choose_phone_engine,
    normalize_phone,
    phone_engine_name,
    use_phone_engine,
)

rphonenumbers = pytest.importorskip("rphonenumbers")

DIFFERENTIAL_NUMBERS = 100_000
NUMBER_TYPES = (
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.VOIP,
)
SEPARATORS = (" ", "-", ".", "(", ")", "  ", " - ", "/")
GARBAGE = ("x", "ext", "#", "*", ";", ",", "a", "tel:", "++", "\u0661", "\uff15", "\u00a0", "?")


def _seeds() -> list[tuple[str, int, str]]:
    """(region, country code, national significant number) of every region's example numbers."""
    seeds = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in NUMBER_TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                nsn = phonenumbers.national_significant_number(example)
                seeds.append((region, example.country_code, nsn))
    return seeds


def _separated(rng: random.Random, digits: str) -> str:
    return "".join(d + (rng.choice(SEPARATORS) if rng.random() < 0.3 else "") for d in digits)


def _garbled(rng: random.Random, text: str) -> str:
    where = rng.randrange(len(text) + 1)
    return text[:where] + rng.choice(GARBAGE) + text[where:]


def generated_numbers(count: int, seed: int = 20) -> list[tuple[str, str | None]]:
    """``count`` (text, default region) pairs; about a third of them valid numbers."""
    rng = random.Random(seed)
    seeds = _seeds()
    pairs = []
    # region after region: phonenumbers compiles each region's patterns into a cache of 512, and
    # drawing regions at random would recompile them for nearly every number (minutes, not s)
    for n in range(count):
        region, code, nsn = seeds[n * len(seeds) // count]
        redraw = rng.randint(0, min(4, len(nsn)))
        nsn = nsn[: len(nsn) - redraw] + "".join(rng.choice("0123456789") for _ in range(redraw))
        if rng.random() < 0.15:  # a digit too many or too few
            nsn = nsn + rng.choice("0123456789") if rng.random() < 0.5 else nsn[:-1]
        trunk = phonenumbers.ndd_prefix_for_region(region, True) or ""
        shape = rng.randrange(7)
        read_in = rng.choice((None, "UA", "ZZ", region, region))
        if shape == 0:
            text = f"+{code}{nsn}"
        elif shape == 1:
            text = f"{code}{nsn}"
        elif shape == 2:
            text = f"00{code}{nsn}"
        elif shape == 3:
            text, read_in = f"{trunk}{nsn}", rng.choice([region, region, read_in])
        elif shape == 4:
            text = f"+{code} {_separated(rng, nsn)}"
        elif shape == 5:
            text, read_in = _separated(rng, f"{trunk}{nsn}"), region
        else:
            text = f"+{code}{nsn}" if rng.random() < 0.5 else f"{trunk}{nsn}"
            for _ in range(rng.randint(1, 3)):
                text = _garbled(rng, text)
        if rng.random() < 0.05:
            text = f"  {text} "
        pairs.append((text, read_in))
    return pairs


def test_native_engine_answers_as_phonenumbers_on_generated_numbers():
    """The engines agree on every number the native one is given; on the others (garbage) they
    may refuse for other reasons, never differ on a value."""
    numbers = generated_numbers(DIFFERENTIAL_NUMBERS)
    differences, reasons_only = [], []
    valid = native_shaped = 0
    for text, region in numbers:
        native = _check_phone(rphonenumbers, text.strip(), region)
        reference = _check_phone(phonenumbers, text.strip(), region)
        valid += reference.value is not None
        shaped = bool(NATIVE_SHAPE.fullmatch(text.strip()))
        native_shaped += shaped
        if native.value != reference.value or (shaped and native != reference):
            differences.append((text, region, native, reference))
        elif native != reference:
            reasons_only.append(text)
    assert not differences, f"{len(differences)} differences, first ones: {differences[:5]}"
    # the corpus reaches both answers and both paths in bulk
    assert DIFFERENTIAL_NUMBERS * 0.2 < valid < DIFFERENTIAL_NUMBERS * 0.8
    assert native_shaped > DIFFERENTIAL_NUMBERS * 0.7
    assert len(reasons_only) < DIFFERENTIAL_NUMBERS * 0.01


def test_probes_pass_with_the_installed_native_engine():
    assert choose_phone_engine().name == "rphonenumbers"
    assert phone_engine_name() == "rphonenumbers"


def test_a_missing_native_engine_leaves_phonenumbers():
    assert choose_phone_engine("no_such_phone_library").name == "phonenumbers"


def _fake_engine(monkeypatch, name: str, parse) -> None:
    fake = types.ModuleType(name)
    fake.parse = parse
    fake.is_valid_number = rphonenumbers.is_valid_number
    fake.format_number = rphonenumbers.format_number
    fake.PhoneNumberFormat = rphonenumbers.PhoneNumberFormat
    fake.NumberParseException = rphonenumbers.NumberParseException
    monkeypatch.setitem(sys.modules, name, fake)


def test_an_engine_that_disagrees_on_a_probe_is_not_used(monkeypatch, caplog):
    last_text, _ = PHONE_PROBES[-1]

    def parse(text, region):
        if text == last_text:
            return rphonenumbers.parse("+380501234567", None)
        return rphonenumbers.parse(text, region)

    _fake_engine(monkeypatch, "disagreeing_phones", parse)
    assert choose_phone_engine("disagreeing_phones").name == "phonenumbers"
    assert "disagrees with phonenumbers" in caplog.text


def test_an_engine_that_fails_on_a_probe_is_not_used(monkeypatch):
    def parse(text, region):
        raise RuntimeError("panicked")

    _fake_engine(monkeypatch, "failing_phones", parse)
    assert choose_phone_engine("failing_phones").name == "phonenumbers"


@pytest.mark.parametrize("engine", ["phonenumbers", "rphonenumbers"])
def test_normalize_phone_gives_the_same_with_either_engine(engine):
    chosen = PhoneEngine(engine, sys.modules[engine])
    use_phone_engine(chosen)
    try:
        assert normalize_phone(" +38 (050) 123-45-67 ", "UA") == Normalized("380501234567")
        assert normalize_phone("12-34", "UA").problem == "phone '***234' is not a valid number"
        assert engine == phone_engine_name()
    finally:
        use_phone_engine(None)
