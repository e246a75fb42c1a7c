"""Vectorized generation of warehouse rows with realistic shares of messy data.

numpy builds every column at once (no Python loop per row), so millions of rows take seconds.
The shares follow the brief: ~60 % linked to a CRM contact (half of those with an eSputnik
contact id), ~3 % invalid emails and phones, ~8 % blocked, ~2 % rows without any identifier,
~0.5 % rows repeating another row's chat id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Subscription dates spread over the whole history, not only recent days: every run reads every
# subscriber, and the rows that matter most are the late arrivals, new chat ids whose
# subscribed_at is years old (a backfilled CRM import, a bot migrated from another account).
# Each batch, the 'incremental' case's added rows included, draws its dates from this span.
START = np.datetime64("2020-01-01T00:00:00", "s")
END = np.datetime64("2026-11-24T00:00:00", "s")  # exclusive: the last day is 2026-11-23

LINKED_SHARE = 0.60
CONTACT_ID_SHARE = 0.50  # of linked rows
BLOCKED_SHARE = 0.08
NO_IDENTIFIER_SHARE = 0.02
DUPLICATE_SHARE = 0.005
INVALID_SHARE = 0.03
EMAIL_PRESENT = 0.90  # of CRM contacts
CRM_PHONE_PRESENT = 0.70  # of CRM contacts
LINKED_BOT_PHONE = 0.50  # linked subscribers who also shared a phone with the bot
PADDED_CHAT_ID = 0.01  # chat ids stored with surrounding blanks

UA_OPERATORS = np.array(["50", "63", "66", "67", "68", "73", "93", "95", "96", "97", "98", "99"])
INVALID_PHONES = np.array(["12-34", "+380 12 34", "050-12", "+380501", "phone", "n/a"])
CONTACT_ID_BASE = 10_000_000
SANDBOX_EXTERNAL_BASE = 200_000_000
SANDBOX_PHONE_BASE = 400_000_000

SUBSCRIBER_COLUMNS = (
    "chat_id",
    "customer_id",
    "phone",
    "status",
    "subscribed_at",
    "status_changed_at",
)
CONTACT_COLUMNS = ("customer_id", "esputnik_contact_id", "email", "phone", "updated_at")


@dataclass
class Batch:
    """One generated slice of the warehouse plus the contacts eSputnik already knows.

    Columns are numpy object arrays (``None`` for NULL) in the order of the table's columns.
    ``sandbox_contacts`` lets the bench pre-register contacts in the sandbox (see sandbox.py).
    """

    subscribers: dict[str, np.ndarray]
    contacts: dict[str, np.ndarray]
    sandbox_contacts: list[dict]

    @property
    def subscriber_rows(self) -> int:
        return len(self.subscribers["chat_id"])

    @property
    def contact_rows(self) -> int:
        return len(self.contacts["customer_id"])


_TWO = np.array([f"{i:02d}" for i in range(100)])
_THREE = np.array([f"{i:03d}" for i in range(1_000)])
_DAYS = np.datetime_as_string(np.arange(START, END + 1, np.timedelta64(1, "D")), unit="D")


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded text; table look-ups for short widths, as int->str casts are slow."""
    if width == 2:
        return _TWO[values]
    if width == 3:
        return _THREE[values]
    return np.strings.zfill(values.astype(str), width)


def _cat(*parts: np.ndarray | str) -> np.ndarray:
    out = parts[0]
    for part in parts[1:]:
        out = np.strings.add(out, part)
    return out


def _timestamps(seconds: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' text, what the reference schema stores on SQLite."""
    days, rest = np.divmod(seconds, 86_400)
    hours, rest = np.divmod(rest, 3_600)
    minutes, secs = np.divmod(rest, 60)
    return _cat(_DAYS[days], " ", _TWO[hours], ":", _TWO[minutes], ":", _TWO[secs])


def _with_nulls(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    out = np.full(len(values), None, dtype=object)
    out[present] = values[present]
    return out


def _shaped(
    rng: np.random.Generator, count: int, builders: tuple[Callable[[np.ndarray], np.ndarray], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` values, each built by one of ``builders`` picked at random, and which of them
    stay valid (the rest, ``INVALID_SHARE``, the caller breaks): (raw, valid)."""
    shapes = rng.integers(0, len(builders), count)
    raw = np.empty(count, dtype=object)
    for shape, build in enumerate(builders):
        mask = shapes == shape
        if mask.any():
            raw[mask] = build(mask)
    return raw, rng.random(count) >= INVALID_SHARE


def phones(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ukrainian mobile numbers in assorted punctuation: (raw, normalized digits, valid).

    ``normalized`` is what ``normalize_phone`` returns for a valid number ('380501234567').
    """
    code = UA_OPERATORS[rng.integers(0, len(UA_OPERATORS), count)]
    a = _digits(rng.integers(0, 1000, count), 3)
    b = _digits(rng.integers(0, 100, count), 2)
    c = _digits(rng.integers(0, 100, count), 2)
    normalized = _cat("380", code, a, b, c)
    builders = (
        lambda m: _cat("+380", code[m], a[m], b[m], c[m]),
        lambda m: _cat("+38 (0", code[m], ") ", a[m], "-", b[m], "-", c[m]),
        lambda m: _cat("0", code[m], " ", a[m], " ", b[m], " ", c[m]),
        lambda m: _cat("380", code[m], a[m], b[m], c[m]),
        lambda m: _cat("+380-", code[m], "-", a[m], "-", b[m], "-", c[m]),
        lambda m: _cat("(0", code[m], ")", a[m], b[m], c[m]),
        lambda m: _cat("00380", code[m], a[m], b[m], c[m]),
    )
    raw, valid = _shaped(rng, count, builders)
    bad = ~valid
    raw[bad] = INVALID_PHONES[rng.integers(0, len(INVALID_PHONES), int(bad.sum()))]
    return raw, normalized, valid


def emails(rng: np.random.Generator, number: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Addresses in mixed case and padding for ids given as text, ~3 % broken: (raw, valid)."""
    count = len(number)
    builders = (
        lambda m: _cat("user", number[m], "@example.com"),
        lambda m: _cat(" User", number[m], "@Example.COM "),
        lambda m: _cat("client.", number[m], "@mail.ua"),
        lambda m: _cat("shop+", number[m], "@ukr.net"),
    )
    raw, valid = _shaped(rng, count, builders)
    bad = ~valid
    broken = (
        _cat("user", number[bad], "@"),
        _cat("user", number[bad], ".example.com"),
        _cat("user ", number[bad], "@example.com"),
    )
    pick = rng.integers(0, len(broken), int(bad.sum()))
    chosen = np.empty(len(pick), dtype=object)
    for shape, values in enumerate(broken):
        chosen[pick == shape] = values[pick == shape]
    raw[bad] = chosen
    return raw, valid


def generate(count: int, first_id: int, seed: int) -> Batch:
    """``count`` subscriber rows whose unique ids start at ``first_id`` (ids never repeat).

    Each batch uses its own ids, so a later batch only adds new tokens (the incremental cases).
    """
    rng = np.random.default_rng(seed)
    duplicates = round(count * DUPLICATE_SHARE)
    base = count - duplicates
    ids = np.arange(first_id, first_id + base, dtype=np.int64)

    linked = rng.random(base) < LINKED_SHARE
    has_contact_id = linked & (rng.random(base) < CONTACT_ID_SHARE)
    # rows with no identifier at all: unlinked and no phone shared with the bot
    no_identifier = ~linked & (rng.random(base) < NO_IDENTIFIER_SHARE / (1 - LINKED_SHARE))
    bot_phone_present = np.where(linked, rng.random(base) < LINKED_BOT_PHONE, ~no_identifier)
    blocked = rng.random(base) < BLOCKED_SHARE
    span = int((END - START) / np.timedelta64(1, "s"))
    subscribed_s = rng.integers(0, span, base)
    changed_s = np.minimum(subscribed_s + rng.integers(3_600, 30 * 86_400, base), span - 1)

    id_text = _digits(ids, 9)  # ids stay below 10**9
    chat = _cat("5", id_text).astype(object)
    padded = rng.random(base) < PADDED_CHAT_ID
    chat[padded] = _cat("  ", chat[padded].astype(str), " ").astype(object)
    customer = _cat("C", id_text).astype(object)
    bot_raw, bot_norm, bot_valid = phones(rng, base)
    subscribed = _timestamps(subscribed_s).astype(object)
    subscribers = {
        "chat_id": chat,
        "customer_id": _with_nulls(customer, linked),
        "phone": _with_nulls(bot_raw, bot_phone_present),
        "status": np.where(blocked, "blocked", "active").astype(object),
        "subscribed_at": subscribed,
        "status_changed_at": _with_nulls(_timestamps(changed_s).astype(object), blocked),
    }

    # ~0.5 % rows: the same chat seen again later, without the CRM link
    source = rng.integers(0, base, duplicates)
    later = np.minimum(subscribed_s[source] + rng.integers(60, 86_400, duplicates), span - 1)
    repeat = {
        "chat_id": subscribers["chat_id"][source],
        "customer_id": np.full(duplicates, None, dtype=object),
        "phone": subscribers["phone"][source],
        "status": subscribers["status"][source],
        "subscribed_at": _timestamps(later).astype(object),
        "status_changed_at": subscribers["status_changed_at"][source],
    }
    subscribers = {k: np.concatenate([v, repeat[k]]) for k, v in subscribers.items()}

    crm_ids = ids[linked]
    n_crm = len(crm_ids)
    email_raw, _ = emails(rng, id_text[linked])
    crm_phone_raw, _, _ = phones(rng, n_crm)
    contact_ids = (CONTACT_ID_BASE + crm_ids).astype(object)
    contacts = {
        "customer_id": customer[linked],
        "esputnik_contact_id": _with_nulls(contact_ids, has_contact_id[linked]),
        "email": _with_nulls(email_raw, rng.random(n_crm) < EMAIL_PRESENT),
        "phone": _with_nulls(crm_phone_raw, rng.random(n_crm) < CRM_PHONE_PRESENT),
        "updated_at": subscribed[linked],
    }
    return Batch(
        subscribers,
        contacts,
        sandbox_contacts(
            ids, linked, has_contact_id, customer, bot_phone_present, bot_valid, bot_norm
        ),
    )


def sandbox_contacts(
    ids: np.ndarray,
    linked: np.ndarray,
    has_contact_id: np.ndarray,
    customer: np.ndarray,
    bot_present: np.ndarray,
    bot_valid: np.ndarray,
    bot_norm: np.ndarray,
) -> list[dict]:
    """Contacts eSputnik would already hold, keyed by each row's highest-priority identifier.

    The sync sends contactId when the CRM has one, else externalCustomerId for linked rows, else
    the bot phone; pre-registering those keeps the sandbox from creating contacts (see
    sandbox.py for why that matters at benchmark volumes).
    """
    out: list[dict] = [{"id": int(i)} for i in (CONTACT_ID_BASE + ids[has_contact_id]).tolist()]
    by_external = linked & ~has_contact_id
    by_phone = ~linked & bot_present & bot_valid
    for key, base, rows, values in (
        ("externalCustomerId", SANDBOX_EXTERNAL_BASE, by_external, customer),
        ("phone", SANDBOX_PHONE_BASE, by_phone, bot_norm),
    ):
        numbers = (base + ids[rows]).tolist()
        out += [{"id": int(n), key: v} for n, v in zip(numbers, values[rows].tolist(), strict=True)]
    return out
