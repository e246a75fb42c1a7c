"""The payload suite itself: it catches what it must, and an empty batch holds vacuously."""

from __future__ import annotations

import subprocess
import sys
import time
import weakref

import pandas as pd
from sqlalchemy import create_engine

from bench.validation import extract_rows
from dagster_project.core import validation
from dagster_project.core.db import append_frame
from dagster_project.core.expectations import (
    EXPECTATIONS,
    SUITE_NAME,
    SuiteRunner,
    payload_frame,
    validate_payload,
)
from dagster_project.core.schema import ensure_state_schema
from dagster_project.core.validation import SECOND_PARTS


def payload(**columns: list) -> pd.DataFrame:
    base = {
        "token": ["501", "502"],
        "contact_id": pd.array([11, None], dtype="Int64"),
        "external_customer_id": ["C1", None],
        "phone": [None, "380501234567"],
        "email": ["a@example.com", None],
    }
    return pd.DataFrame({**base, **columns})


def test_clean_payload_passes_every_expectation() -> None:
    outcome = validate_payload(payload())
    assert outcome.success
    assert len(outcome.expectations) == 8
    assert outcome.failed == ()


def test_suite_names_the_broken_expectations() -> None:
    outcome = validate_payload(payload(token=["501", "501"], phone=[None, "+38 050"]))
    assert not outcome.success
    failed = {(e.name, e.column): e.unexpected_count for e in outcome.failed}
    assert failed == {
        ("expect_column_values_to_be_unique", "token"): 2,
        ("expect_column_values_to_match_regex", "phone"): 1,
    }


def test_categorical_columns_give_the_outcome_of_plain_text() -> None:
    """The suite reads text columns as categoricals (cheaper for GX to fingerprint); on a frame
    that breaks every expectation, counts and sampled values match the plain-text frame's."""
    broken = payload(
        token=["501", "501", None, "7" * 300, "505", "506", "507", "508", "509"],
        contact_id=pd.array([11, None, None, 0, None, None, None, None, None], dtype="Int64"),
        external_customer_id=["C1", None, "", "y" * 65, None, None, None, None, None],
        phone=[None, "+38 050", "380501234567", None, "0501234567", None, "12", None, None],
        email=[None, None, None, None, None, "a@b", "no-at", "x@y.z ", None],
    )
    runner = SuiteRunner(SUITE_NAME, EXPECTATIONS, sample_rows=20)
    plain = runner.validate(payload_frame(broken, categorical=False))
    assert {e.column for e in plain.failed} == {e[1]["column"] for e in EXPECTATIONS}
    assert runner.validate(payload_frame(broken)) == plain


def test_a_validated_frame_is_not_kept_by_great_expectations() -> None:
    """GX caches the frame it validated; the runner drops it, so a bucket's payload frame is
    freed as soon as the suite has run, not held through the writes that follow."""
    runner = SuiteRunner(SUITE_NAME, EXPECTATIONS)
    frame = payload_frame(payload())
    alive = weakref.ref(frame)
    assert runner.validate(frame).success
    del frame
    assert alive() is None
    assert runner.validate(payload_frame(payload(token=["501", "501"]))).failed  # still usable


def test_empty_batch_reports_the_same_expectations_as_holding() -> None:
    ran = validate_payload(payload())
    empty = validate_payload(payload().iloc[0:0])
    assert empty.success
    assert [(e.name, e.column) for e in empty.expectations] == [
        (e.name, e.column) for e in ran.expectations
    ]
    assert all(e.unexpected_count == 0 for e in empty.expectations)


def test_nothing_to_check_imports_no_great_expectations() -> None:
    """GX takes seconds to import: loading the code location and a run with no row to send
    or to check must not pay for it (a fresh interpreter, as other tests here import it)."""
    script = (
        "import sys, pandas as pd\n"
        "import dagster_project.definitions\n"
        "from dagster_project.core.expectations import PAYLOAD_COLUMNS, PayloadValidator\n"
        "from dagster_project.core.extract_expectations import (\n"
        "    NO_ROWS, RawBounds, check_raw_frame, raw_frame)\n"
        "outcome = PayloadValidator().validate(pd.DataFrame(columns=list(PAYLOAD_COLUMNS)))\n"
        "assert outcome.success\n"
        "assert check_raw_frame(raw_frame(NO_ROWS), RawBounds(1, 1)).outcome.success\n"
        "print('great_expectations' in sys.modules)\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "False"


def test_the_import_is_timed_once_per_process() -> None:
    """The validate step reports the GX import apart from the suite: it is paid by a process's
    first suite run only (a fresh interpreter, as other tests here import GX)."""
    script = (
        "from dagster_project.core.expectations import import_seconds, validate_payload\n"
        "from tests.test_expectations import payload\n"
        "assert import_seconds() == 0.0\n"
        "validate_payload(payload())\n"
        "first = import_seconds()\n"
        "validate_payload(payload())\n"
        "print(first > 0, import_seconds() == first)\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["True", "True"]


def test_validate_step_counts_the_import_once_and_apart(tmp_path) -> None:
    """A step that pays the import reports it as its own part: the parts still add up to no
    more than the step (counted in the suite too, they would exceed it by the import)."""
    script = f"""
import time
from sqlalchemy import create_engine
from bench.validation import extract_rows
from dagster_project.core.db import append_frame
from dagster_project.core.expectations import import_seconds
from dagster_project.core.extract_expectations import RawBounds
from dagster_project.core.schema import ensure_state_schema
from dagster_project.core.validation import validate_staged
engine = create_engine("sqlite:///{tmp_path / "state.sqlite"}")
ensure_state_schema(engine)
with engine.begin() as conn:
    append_frame(conn, "esputnik_stage_extract", extract_rows(500).assign(batch_id="b1"))
started = time.perf_counter()
report = validate_staged(
    engine, "b1", "app", "run", "UA", 1_000, log=lambda _: None, raw_bounds=RawBounds(0, 0)
)
wall = time.perf_counter() - started
parts = sum(report.seconds.values()) + report.gx_seconds + report.gx_import_seconds
print(report.gx_import_seconds == import_seconds() > 0, report.gx_seconds > 0, parts <= wall)
print(*(part for part, seconds in report.seconds.items() if seconds > 0), sep=",")
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    checks, timed = ran.stdout.splitlines()
    assert checks.split() == ["True", "True", "True"]
    assert timed.split(",") == list(SECOND_PARTS)  # each part timed, none left at zero


def test_the_steps_setup_and_settled_look_up_are_in_its_parts(tmp_path, monkeypatch) -> None:
    """Clearing the batch's earlier outputs and reading the groups refused before are timed
    (made slow here, they must show in ``setup`` and ``settled``)."""

    def slowly(function):
        def wrapped(*args, **kwargs):
            time.sleep(0.05)
            return function(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(validation, "delete_batch", slowly(validation.delete_batch))
    monkeypatch.setattr(validation, "read_settled", slowly(validation.read_settled))
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    ensure_state_schema(engine)
    with engine.begin() as conn:
        append_frame(conn, "esputnik_stage_extract", extract_rows(50).assign(batch_id="b1"))
    report = validation.validate_staged(engine, "b1", "app", "run", "UA", 1_000, log=print)
    assert report.seconds["setup"] >= 0.05 and report.seconds["settled"] >= 0.05
    assert report.rows["validated"] == 50
