"""The Great Expectations suite every batch must pass before anything is pushed.

It checks the payload exactly as it will be sent: a token on every row, unique tokens, at least
one identifier, and identifiers in the formats eSputnik resolves contacts by. The normalization
code should make it pass always; a failure means that code or the extract broke, and the push is
blocked rather than sending identifiers that can never be corrected.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import great_expectations as gx

SUITE_NAME = "esputnik_token_payload"
PHONE_PATTERN = r"^[1-9][0-9]{6,14}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
EXPECTATIONS: tuple[tuple[str, dict], ...] = (
    ("ExpectColumnValuesToNotBeNull", {"column": "token"}),
    ("ExpectColumnValuesToBeUnique", {"column": "token"}),
    ("ExpectColumnValueLengthsToBeBetween", {"column": "token", "min_value": 1, "max_value": 255}),
    (
        "ExpectColumnValuesToBeBetween",
        {"column": "identifier_count", "min_value": 1, "max_value": 4},
    ),
    ("ExpectColumnValuesToBeBetween", {"column": "contact_id", "min_value": 1}),
    (
        "ExpectColumnValueLengthsToBeBetween",
        {"column": "external_customer_id", "min_value": 1, "max_value": 64},
    ),
    ("ExpectColumnValuesToMatchRegex", {"column": "phone", "regex": PHONE_PATTERN}),
    ("ExpectColumnValuesToMatchRegex", {"column": "email", "regex": EMAIL_PATTERN}),
)


@dataclass(frozen=True)
class ExpectationOutcome:
    name: str
    column: str
    success: bool
    unexpected_count: int


@dataclass(frozen=True)
class SuiteOutcome:
    success: bool
    expectations: tuple[ExpectationOutcome, ...]

    @property
    def failed(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.expectations if not e.success)


def _gx():
    """Great Expectations, imported on first use: it takes seconds to import, and a run with
    nothing to send (or a process that only loads the definitions) never needs it."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    return great_expectations


def payload_suite() -> gx.ExpectationSuite:
    gx = _gx()
    return gx.ExpectationSuite(
        name=SUITE_NAME,
        expectations=[getattr(gx.expectations, kind)(**kwargs) for kind, kwargs in EXPECTATIONS],
    )


def _snake(kind: str) -> str:
    """``ExpectColumnValuesToBeUnique`` -> ``expect_column_values_to_be_unique`` (GX's type)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def validate_payload(accepted: pd.DataFrame) -> SuiteOutcome:
    """Run the suite over the rows about to be sent (an ephemeral, in-memory GX context).

    With no rows to send there is nothing the suite could find: every expectation holds
    vacuously, so the result says so without starting Great Expectations.
    """
    if accepted.empty:
        return SuiteOutcome(
            success=True,
            expectations=tuple(
                ExpectationOutcome(
                    name=_snake(kind), column=kwargs["column"], success=True, unexpected_count=0
                )
                for kind, kwargs in EXPECTATIONS
            ),
        )
    gx = _gx()
    frame = accepted[["token", "contact_id", "external_customer_id", "phone", "email"]].copy()
    frame["identifier_count"] = frame.drop(columns="token").notna().sum(axis=1)
    frame["contact_id"] = frame["contact_id"].astype("Float64")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    asset = context.data_sources.add_pandas("sync_batch").add_dataframe_asset("payload")
    batch = asset.add_batch_definition_whole_dataframe("whole_batch").get_batch(
        batch_parameters={"dataframe": frame}
    )
    result = batch.validate(payload_suite())
    outcomes = tuple(
        ExpectationOutcome(
            name=r.expectation_config.type,
            column=str(r.expectation_config.kwargs.get("column")),
            success=bool(r.success),
            unexpected_count=int((r.result or {}).get("unexpected_count") or 0),
        )
        for r in result.results
    )
    return SuiteOutcome(success=bool(result.success), expectations=outcomes)
