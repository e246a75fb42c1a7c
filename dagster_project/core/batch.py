"""Turn an extracted batch into the rows to send and the rows refused, with reasons.

Pure pandas: each identifier column is normalized a column at a time (``normalize_column``:
values of a settled shape by Arrow, the others once per distinct raw value, since phonenumbers
and email-validator are per-value libraries), everything else is vectorized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.core.column_rules import normalize_column
from dagster_project.core.columns import RAW_COLUMNS
from dagster_project.core.emails import normalize_email
from dagster_project.core.ids import normalize_chat_id, normalize_contact_id, normalize_external_id
from dagster_project.core.phones import normalize_phone

# Why a row was not sent (outcome 'rejected').
EMPTY_TOKEN = "empty_token"
INVALID_CHAT_ID = "invalid_chat_id"
BLOCKED = "blocked"
UNKNOWN_STATUS = "unknown_status"
NO_VALID_IDENTIFIER = "no_valid_identifier"
DUPLICATE_TOKEN = "duplicate_token"
REJECT_REASONS = (
    EMPTY_TOKEN,
    INVALID_CHAT_ID,
    BLOCKED,
    UNKNOWN_STATUS,
    NO_VALID_IDENTIFIER,
    DUPLICATE_TOKEN,
)

# Why an identifier was left out of a payload that was still sent (outcome 'identifier_dropped').
INVALID_CONTACT_ID = "invalid_contact_id"
INVALID_EXTERNAL_ID = "invalid_external_customer_id"
INVALID_PHONE = "invalid_phone"
INVALID_EMAIL = "invalid_email"
DROP_REASONS = (INVALID_CONTACT_ID, INVALID_EXTERNAL_ID, INVALID_PHONE, INVALID_EMAIL)

# A subscriber's status, read as ``status_key`` reads it; any other value is refused.
KNOWN_STATUSES = ("active", "blocked")

REJECTED = "rejected"
IDENTIFIER_DROPPED = "identifier_dropped"

IDENTIFIERS = ("contact_id", "external_customer_id", "phone", "email")
ACCEPTED_COLUMNS = ("source_row", "token", *IDENTIFIERS, "fingerprint", "last_event_at")
REJECT_COLUMNS = ("source_row", "chat_id", "customer_id", "outcome", "reason", "detail")


@dataclass(frozen=True)
class ValidatedBatch:
    """Rows to send (one per token) and every refusal or dropped identifier."""

    accepted: pd.DataFrame
    rejects: pd.DataFrame

    def reject_counts(self) -> dict[str, int]:
        refused = self.rejects[self.rejects["outcome"] == REJECTED]
        counts = refused["reason"].value_counts()
        return {reason: int(counts.get(reason, 0)) for reason in REJECT_REASONS}

    def drop_counts(self) -> dict[str, int]:
        dropped = self.rejects[self.rejects["outcome"] == IDENTIFIER_DROPPED]
        counts = dropped["reason"].value_counts()
        return {reason: int(counts.get(reason, 0)) for reason in DROP_REASONS}


def fingerprint(frame: pd.DataFrame) -> pd.Series:
    """The identifiers a token is sent with, as one comparable string.

    A quarantined token is retried only when this changes (its data was fixed).
    """
    parts = [pc.fill_null(_as_arrow_text(frame[column]), "") for column in IDENTIFIERS]
    texts = [pa.scalar(text, pa.string()) for text in ("c:", "|x:", "|p:", "|e:", "")]
    joined = pc.binary_join_element_wise(
        texts[0], parts[0], texts[1], parts[1], texts[2], parts[2], texts[3], parts[3], texts[4]
    )  # Arrow joins the columns in one pass; chained Series additions copied each time
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=frame.index, dtype=object)


def _as_arrow_text(column: pd.Series) -> pa.Array:
    """A normalized identifier column as Arrow text: contact ids (Int64) cast by Arrow, the
    others (str or missing) handed over as they are, without pandas' per-value conversion."""
    if isinstance(column.dtype, pd.Int64Dtype):
        return pa.array(column, type=pa.int64()).cast(pa.string())
    return pa.array(column.to_numpy(dtype=object), type=pa.string(), from_pandas=True)


def status_key(status: pd.Series) -> pd.Series:
    """Statuses as the rules read them: spaces trimmed, lowercased, missing as ''. Exactly
    SQL's LOWER(TRIM(status)), which the identifier coverage (sql/identifier_coverage.sql)
    counts active subscribers by: a status with a tab or another white space around it is
    refused as unknown by both."""
    return status.astype("string").str.strip(" ").str.lower().fillna("")


def _order(frame: pd.DataFrame, columns: list[str], ascending: list[bool]) -> np.ndarray:
    """The positions ``frame.sort_values(columns, ascending=ascending, na_position="last")``
    puts the rows in, for integer and timestamp columns: one stable ``np.lexsort`` of their
    integers (pandas factorizes every key first), so ties keep their order, as there."""
    keys = []
    for column, up in zip(reversed(columns), reversed(ascending), strict=True):
        values = frame[column]
        missing = values.isna().to_numpy()
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_localize(None)  # UTC wall time: the same order
        numbers = np.where(missing, 0, values.to_numpy().astype("int64", copy=False))
        keys.append(numbers if up else -numbers)
        if missing.any():
            keys.append(missing)  # before the values of this column: missing ones last
    return np.lexsort(keys)


def _first_per_token(
    frame: pd.DataFrame, columns: list[str], ascending: list[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of each token's first row when its rows are sorted by ``columns``, and of the
    other rows. Only rows of repeated tokens are sorted: nearly every token has one row."""
    repeated = frame["token_code"].duplicated(keep=False).to_numpy()
    positions = np.flatnonzero(repeated)
    part = frame.iloc[positions]
    ordered = positions[_order(part, ["token_code", *columns], [True, *ascending])]
    codes = frame["token_code"].to_numpy()[ordered]
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    return np.concatenate([np.flatnonzero(~repeated), ordered[first]]), ordered[~first]


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps in UTC. ISO text, what both databases give, is read by one vectorized format
    (a third of the time); anything else by pandas' per-value inference, as always."""
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    other = parsed.isna() & values.notna()
    if other.any():
        parsed[other] = pd.to_datetime(values[other], utc=True, errors="coerce", format="mixed")
    return parsed


def validate_batch(raw: pd.DataFrame, default_region: str | None) -> ValidatedBatch:
    """Normalize identifiers, refuse unusable rows and keep one row per token.

    Rules: token is the trimmed chat id; blocked subscribers are never sent; contactId and
    externalCustomerId come from the joined CRM row only; phone is the CRM phone, else the one
    shared with the bot; an invalid identifier is dropped and the row is still sent while another
    valid one remains. When a token appears in several rows, the latest status decides whether it
    is blocked, and the row with the richest identifiers is the one sent.

    Status and token are settled first, so identifiers (the costly part) are only normalized for
    rows that could be sent.
    """
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"extracted batch lacks columns {missing}; see sql/extract_subscribers.sql"
        )
    raw = raw.reset_index(drop=True)
    df = pd.DataFrame({"source_row": raw["source_row"].astype("int64")})
    df["chat_id"] = raw["chat_id"].astype(object)
    df["customer_id"] = raw["subscriber_customer_id"].astype(object)
    df["token"], token_problem = normalize_column(raw["chat_id"], normalize_chat_id)
    # Rows are sorted and grouped by token: by integer codes, several times faster than text.
    df["token_code"] = pd.factorize(df["token"])[0]
    token_problem = token_problem.where(raw["chat_id"].notna(), "empty token")
    subscribed = _utc(raw["subscribed_at"])
    changed = _utc(raw["status_changed_at"])
    df["last_event_at"] = changed.where(changed > subscribed, subscribed)
    status = status_key(raw["status"])

    reason = pd.Series(None, index=df.index, dtype=object)
    detail = pd.Series(None, index=df.index, dtype=object)
    reason[token_problem.notna()] = INVALID_CHAT_ID
    reason[token_problem == "empty token"] = EMPTY_TOKEN
    detail[token_problem.notna()] = token_problem[token_problem.notna()]
    unknown = reason.isna() & ~status.isin(KNOWN_STATUSES)
    reason[unknown] = UNKNOWN_STATUS
    detail[unknown] = "status " + raw["status"].astype(str)[unknown].str.slice(0, 32).map(repr)

    # The latest status of a token decides (blocked wins ties); blocked tokens go no further.
    pending = df[reason.isna()].assign(
        blocked_rank=(status[reason.isna()] == "blocked").astype(int)
    )
    latest, _ = _first_per_token(
        pending, ["last_event_at", "blocked_rank"], ascending=[False, False]
    )
    blocked_tokens = pending["token_code"].iloc[latest][pending["blocked_rank"].iloc[latest] == 1]
    is_blocked = pending["token_code"].isin(blocked_tokens)
    reason[pending.index[is_blocked]] = BLOCKED
    detail[pending.index[is_blocked]] = "subscriber blocked the bot"

    # Identifiers, for the rows still in the running only.
    rows = pending.index[~is_blocked]
    sources = ["crm_customer_id", "esputnik_contact_id", "crm_phone", "bot_phone", "crm_email"]
    part = raw.loc[rows, sources]  # only the columns read below: each one selected is copied
    joined = part["crm_customer_id"].notna()
    contact_id, contact_problem = normalize_column(
        part["esputnik_contact_id"].where(joined), normalize_contact_id
    )
    external_id, external_problem = normalize_column(part["crm_customer_id"], normalize_external_id)

    crm_phone, crm_phone_problem = normalize_column(
        part["crm_phone"].where(joined), normalize_phone, default_region
    )
    # The phone shared with the bot is only used (and only checked) where the CRM has none.
    bot_phone, bot_phone_problem = normalize_column(
        part["bot_phone"].where(crm_phone.isna()), normalize_phone, default_region
    )
    email, email_problem = normalize_column(part["crm_email"].where(joined), normalize_email)
    candidates = df.loc[rows].assign(
        contact_id=contact_id,
        external_customer_id=external_id,
        phone=crm_phone.where(crm_phone.notna(), bot_phone),
        email=email,
    )
    candidates["identifier_count"] = candidates[list(IDENTIFIERS)].notna().sum(axis=1)
    drops = [
        (INVALID_CONTACT_ID, contact_problem),
        (INVALID_EXTERNAL_ID, external_problem),
        (INVALID_PHONE, crm_phone_problem),
        # A bad bot phone only matters when it was the one to use.
        (INVALID_PHONE, bot_phone_problem.where(crm_phone.isna())),
        (INVALID_EMAIL, email_problem),
    ]

    chosen, others = _first_per_token(
        candidates[["token_code", "identifier_count", "last_event_at", "source_row"]].assign(
            has_contact=candidates["contact_id"].notna().astype(int),
            has_external=candidates["external_customer_id"].notna().astype(int),
        ),
        ["has_contact", "has_external", "identifier_count", "last_event_at", "source_row"],
        ascending=[False, False, False, False, True],
    )
    chosen_rows = candidates.iloc[chosen]
    duplicates = candidates.index[others].sort_values()
    chosen_source = chosen_rows.set_index("token_code")["source_row"]
    reason[duplicates] = DUPLICATE_TOKEN
    detail[duplicates] = "same token sent from source row " + (
        candidates.loc[duplicates, "token_code"].map(chosen_source).astype(str)
    )

    anonymous = chosen_rows.index[chosen_rows["identifier_count"] == 0]
    reason[anonymous] = NO_VALID_IDENTIFIER
    problems = zip(*(p.loc[anonymous].tolist() for _, p in drops), strict=True)
    detail[anonymous] = [
        "; ".join(str(v) for v in row if pd.notna(v)) or "no identifier present" for row in problems
    ]

    accepted_index = chosen_rows.index.difference(anonymous)
    accepted = candidates.loc[accepted_index, [c for c in ACCEPTED_COLUMNS if c != "fingerprint"]]
    accepted = accepted.sort_values("source_row")
    accepted["contact_id"] = accepted["contact_id"].astype("Int64")
    accepted["fingerprint"] = fingerprint(accepted)

    refused = df.loc[reason.notna(), ["source_row", "chat_id", "customer_id"]].assign(
        outcome=REJECTED, reason=reason[reason.notna()], detail=detail[reason.notna()]
    )
    sent = df.loc[accepted_index, ["source_row", "chat_id", "customer_id"]]
    dropped = [
        sent[found.notna()].assign(
            outcome=IDENTIFIER_DROPPED, reason=drop_reason, detail=found[found.notna()]
        )
        for drop_reason, found in ((r, problem[accepted_index]) for r, problem in drops)
    ]
    rejects = pd.concat([refused, *dropped], ignore_index=True)[list(REJECT_COLUMNS)]
    return ValidatedBatch(accepted.reset_index(drop=True), rejects.sort_values("source_row"))
