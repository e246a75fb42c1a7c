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
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import great_expectations as gx

SUITE_NAME = "esputnik_token_payload"
PAYLOAD_COLUMNS = ("token", "contact_id", "external_customer_id", "phone", "email")
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


Expectation = tuple[str, dict]  # GX expectation class name, its arguments


@dataclass(frozen=True)
class ExpectationOutcome:
    name: str
    column: str
    success: bool
    unexpected_count: int
    # distinct values among the first rows that broke it (missing ones left out)
    unexpected_values: tuple[object, ...] = ()


@dataclass(frozen=True)
class SuiteOutcome:
    success: bool
    expectations: tuple[ExpectationOutcome, ...]

    @property
    def failed(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.expectations if not e.success)


_import_seconds: float | None = None  # how long the first ``_gx()`` took; None before it


def _gx():
    """Great Expectations, imported on first use: it takes seconds to import, and a run with
    nothing to send (or a process that only loads the definitions) never needs it."""
    global _import_seconds
    started = time.perf_counter()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    if _import_seconds is None:
        _import_seconds = time.perf_counter() - started
    return great_expectations


def import_seconds() -> float:
    """Seconds this process has spent importing Great Expectations for the suites: 0 until
    their first use (and nearly 0 if something else imported it first). A step reports the
    import apart from the suite, as it is paid once per process, whatever the rows."""
    return _import_seconds or 0.0


def build_suite(name: str, expectations: tuple[Expectation, ...]) -> gx.ExpectationSuite:
    gx = _gx()
    return gx.ExpectationSuite(
        name=name,
        expectations=[getattr(gx.expectations, kind)(**kwargs) for kind, kwargs in expectations],
    )


def _snake(kind: str) -> str:
    """``ExpectColumnValuesToBeUnique`` -> ``expect_column_values_to_be_unique`` (GX's type)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def vacuous_outcome(expectations: tuple[Expectation, ...] = EXPECTATIONS) -> SuiteOutcome:
    """Every expectation holding over no rows."""
    return SuiteOutcome(
        success=True,
        expectations=tuple(
            ExpectationOutcome(
                name=_snake(kind), column=kwargs["column"], success=True, unexpected_count=0
            )
            for kind, kwargs in expectations
        ),
    )


class SuiteRunner:
    """One ephemeral, in-memory GX context that validates frames against one suite, one after
    another. An empty frame holds every expectation vacuously, so its outcome is given without
    starting Great Expectations. ``sample_rows`` > 0 keeps the values of the first rows that
    broke each expectation: only for a frame that holds no phone number or email."""

    def __init__(
        self, name: str, expectations: tuple[Expectation, ...], sample_rows: int = 0
    ) -> None:
        self.name, self.expectations, self.sample_rows = name, expectations, sample_rows
        self._batch_definition = None

    def validate(self, frame: pd.DataFrame) -> SuiteOutcome:
        if frame.empty:
            return vacuous_outcome(self.expectations)
        definition = self._definition()
        try:
            batch = definition.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(
                build_suite(self.name, self.expectations),
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": self.sample_rows,
                },
            )
        finally:
            # GX keeps the frame it validated in its execution engine's cache until the next
            # one replaces it: dropped here, the frame's memory is free for the writes after.
            manager = definition.data_asset.datasource.get_execution_engine().batch_manager
            manager.reset_batch_cache()
            manager.batch_data_cache.clear()
        return SuiteOutcome(
            success=bool(result.success),
            expectations=tuple(_outcome(r, self.sample_rows > 0) for r in result.results),
        )

    def _definition(self):
        if self._batch_definition is None:
            gx = _gx()
            logging.getLogger("great_expectations").setLevel(logging.WARNING)
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = {"globally": False}
            asset = context.data_sources.add_pandas("sync_batch").add_dataframe_asset(self.name)
            self._batch_definition = asset.add_batch_definition_whole_dataframe("whole_batch")
        return self._batch_definition


def _outcome(result, keep_sample: bool) -> ExpectationOutcome:
    """One GX expectation result, in our terms."""
    details = result.result or {}
    sample = details.get("partial_unexpected_list") if keep_sample else None
    return ExpectationOutcome(
        name=result.expectation_config.type,
        column=str(result.expectation_config.kwargs.get("column")),
        success=bool(result.success),
        unexpected_count=int(details.get("unexpected_count") or 0),
        unexpected_values=tuple(dict.fromkeys(v for v in sample or () if pd.notna(v))),
    )


class PayloadValidator:
    """The payload suite over rows about to be sent, one frame after another in one context;
    a batch validated in several chunks merges the outcomes with ``merge_outcomes``."""

    def __init__(self) -> None:
        self._runner = SuiteRunner(SUITE_NAME, EXPECTATIONS)

    def validate(self, accepted: pd.DataFrame) -> SuiteOutcome:
        if accepted.empty:
            return vacuous_outcome()
        return self._runner.validate(payload_frame(accepted))


TEXT_COLUMNS = ("token", "external_customer_id", "phone", "email")


def payload_frame(accepted: pd.DataFrame, categorical: bool = True) -> pd.DataFrame:
    """The frame the suite reads: the payload columns and each row's identifier count.

    Text columns go in as categoricals: GX's pandas engine hashes the whole frame twice per
    validation (its batch fingerprint), factorizing every text column each time; a categorical
    is factorized once, here, and only its distinct values are hashed. The outcome is the same
    (tests/test_expectations.py compares)."""
    frame = pd.DataFrame(
        {
            "identifier_count": accepted[list(PAYLOAD_COLUMNS[1:])].notna().sum(axis=1),
            "contact_id": accepted["contact_id"].astype("Float64"),
        }
    )
    for column in TEXT_COLUMNS:
        frame[column] = _categorical(accepted[column]) if categorical else accepted[column]
    return frame[[*PAYLOAD_COLUMNS, "identifier_count"]]


def _categorical(values: pd.Series) -> pd.Categorical:
    """The column as a categorical over its own string objects (``astype("category")`` would
    copy every distinct value into Arrow memory, and GX reads them back as objects)."""
    codes, distinct = pd.factorize(values)
    return pd.Categorical.from_codes(codes, categories=pd.Index(distinct, dtype=object))


def validate_payload(accepted: pd.DataFrame) -> SuiteOutcome:
    """Run the suite over the rows about to be sent (see ``PayloadValidator``)."""
    return PayloadValidator().validate(accepted)


def merge_outcomes(outcomes: list[SuiteOutcome]) -> SuiteOutcome:
    """The suite's outcome over chunks that share no token: unexpected counts add up.

    Valid for token uniqueness too, as long as each token's rows sit in one chunk.
    """
    if not outcomes:
        return vacuous_outcome()
    merged = []
    for parts in zip(*(o.expectations for o in outcomes), strict=True):
        merged.append(
            ExpectationOutcome(
                name=parts[0].name,
                column=parts[0].column,
                success=all(p.success for p in parts),
                unexpected_count=sum(p.unexpected_count for p in parts),
            )
        )
    return SuiteOutcome(success=all(o.success for o in outcomes), expectations=tuple(merged))
