"""Phone checks shared with helper processes: same results as one pass, whatever the helpers do.

The rules below are imported by the helpers from this module, so each can tell where it runs.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial

import pandas as pd
import pytest

from dagster_project.core import spread
from dagster_project.core.batch import RAW_COLUMNS, validate_batch
from dagster_project.core.expectations import (
    GX_WARM_UP,
    PAYLOAD_COLUMNS,
    validate_payload,
    validate_shared,
)
from dagster_project.core.identifiers import normalize_phone
from dagster_project.core.spread import Offload, Spreader, apply_rule

PHONE_RULE = partial(normalize_phone, default_region="UA")


def _in_helper() -> bool:
    main_spec = getattr(sys.modules["__main__"], "__spec__", None)
    return getattr(main_spec, "name", None) == spread.__name__


def where_checked(value: int) -> tuple[int, bool]:
    return value, _in_helper()


def dies_in_helper(value: int) -> int:
    if _in_helper():
        os._exit(3)
    return value * 2


def stalls_in_helper(value: int) -> int:
    if _in_helper():
        time.sleep(3600)
    return value * 2


def fails_on_seven(value: int) -> int:
    if value == 7:
        raise ValueError("seven")
    return value


def phones(count: int) -> list[str]:
    """Valid numbers in two spellings, and every 7th one unusable."""
    return [
        "12345" if n % 7 == 0 else (f"+38050{n:07d}" if n % 2 else f"(050) {n:07d}")
        for n in range(count)
    ]


@pytest.fixture
def messages() -> list[str]:
    return []


@pytest.fixture
def ready_spreader(messages):
    """A spreader whose one helper has started (so it surely takes a share)."""
    with Spreader(1, messages.append) as spreader:
        spreader.start()
        assert spreader.wait_ready(60) == 1, "the helper process did not start"
        yield spreader


def test_shared_checks_equal_one_pass_in_order(ready_spreader):
    values = phones(30_000)
    assert ready_spreader.map(PHONE_RULE, values) == apply_rule(PHONE_RULE, values)
    assert ready_spreader.values_by_helpers > 0
    # the helper took slices from the back, this process from the front
    placed = ready_spreader.map(where_checked, list(range(30_000)))
    assert [value for value, _ in placed] == list(range(30_000))
    assert placed[0][1] is False and placed[-1][1] is True


def test_short_columns_and_zero_helpers_stay_in_this_process(messages):
    with Spreader(1, messages.append) as spreader:
        short = spreader.map(where_checked, list(range(spread.MIN_SPREAD_VALUES - 1)))
        assert not any(in_helper for _, in_helper in short)
        assert spreader.wait_ready(0) == 0  # nothing was started
    with Spreader(0, messages.append) as spreader:
        long = spreader.map(where_checked, list(range(spread.MIN_SPREAD_VALUES * 2)))
        assert not any(in_helper for _, in_helper in long)
    assert messages == []


def test_a_helper_that_dies_hands_its_share_back(ready_spreader, messages):
    values = list(range(30_000))
    assert ready_spreader.map(dies_in_helper, values) == [v * 2 for v in values]
    assert any("stopped" in m and "checked in this process" in m for m in messages)
    # later columns are checked here without waiting for the dead helper
    assert ready_spreader.map(dies_in_helper, values[:20_000]) == [v * 2 for v in values[:20_000]]


def test_a_helper_that_stalls_is_stopped(ready_spreader, messages, monkeypatch):
    monkeypatch.setattr(spread, "STALL_SECONDS", 1.0)
    values = list(range(20_000))
    assert ready_spreader.map(stalls_in_helper, values) == [v * 2 for v in values]
    assert any("stalled" in m and "stopped it" in m for m in messages)


def test_an_error_in_a_rule_is_raised_as_in_one_pass(ready_spreader):
    values = [*range(8, 30_000), 7]  # the bad value is at the end: a helper meets it first
    with pytest.raises(ValueError, match="seven"):
        ready_spreader.map(fails_on_seven, values)


def test_validate_batch_decides_the_same_with_a_helper(ready_spreader):
    count = 24_000
    numbers = phones(count)
    raw = pd.DataFrame(
        {
            **dict.fromkeys(RAW_COLUMNS),
            "source_row": range(count),
            "chat_id": [str(100_000 + n // 2) for n in range(count)],  # two rows per token
            "status": ["blocked" if n % 11 == 0 else "active" for n in range(count)],
            "subscribed_at": "2026-01-10 10:00:00",
            "bot_phone": numbers,
            "subscriber_customer_id": [f"C-{n}" if n % 3 == 0 else None for n in range(count)],
            "crm_customer_id": [f"C-{n}" if n % 3 == 0 else None for n in range(count)],
            "crm_phone": [numbers[-n] if n % 3 == 0 else None for n in range(count)],
        },
        columns=list(RAW_COLUMNS),
    )
    alone = validate_batch(raw, "UA")
    shared = validate_batch(raw, "UA", ready_spreader.map)
    assert ready_spreader.values_by_helpers > 0
    pd.testing.assert_frame_equal(shared.accepted, alone.accepted)
    pd.testing.assert_frame_equal(shared.rejects, alone.rejects)
    assert alone.reject_counts()["blocked"] > 0 and alone.drop_counts()["invalid_phone"] > 0


def test_offloaded_calls_run_in_the_helper_and_come_back_in_order(messages):
    with Offload((), enabled=True, log=messages.append) as offload:
        offload.submit(where_checked, 0)  # not started yet: runs here, at once
        offload.start()
        for value in range(1, 6):
            offload.submit(where_checked, value)
        assert offload.results() == [(0, False)] + [(v, True) for v in range(1, 6)]
    with Offload((), enabled=False, log=messages.append) as offload:
        offload.start()
        offload.submit(where_checked, 7)
        assert offload.results() == [(7, False)]
    assert messages == []


def test_offload_keeps_at_most_in_flight_calls_waiting(messages):
    """Each waiting call holds its arguments (a bucket's rows) here: memory must not grow."""
    with Offload((), enabled=True, log=messages.append) as offload:
        offload.start()
        for value in range(10):
            offload.submit(where_checked, value)
            assert len(offload._pending) <= spread.IN_FLIGHT
        assert offload.results() == [(v, True) for v in range(10)]


def test_offloaded_calls_run_here_once_the_helper_dies(messages):
    with Offload((), enabled=True, log=messages.append) as offload:
        offload.start()
        for value in range(5):
            offload.submit(dies_in_helper, value)
        assert offload.results() == [0, 2, 4, 6, 8]
    assert len(messages) == 1 and "the rest runs in this process" in messages[0]


def test_gx_suite_in_a_helper_gives_the_outcome_of_a_local_run(messages):
    payload = pd.DataFrame(
        {
            "token": ["501", "501", "502"],
            "contact_id": pd.array([1, None, 0], dtype="Int64"),
            "external_customer_id": ["C-1", None, None],
            "phone": [None, "380501234567", "+38 050"],
            "email": [None, None, "a@example.com"],
        }
    )[list(PAYLOAD_COLUMNS)]
    with Offload(GX_WARM_UP, enabled=True, log=messages.append) as suite:
        suite.start()
        suite.submit(validate_shared, payload)
        suite.submit(validate_shared, payload.iloc[2:])
        in_helper = suite.results()
    assert messages == []
    assert in_helper == [validate_payload(payload), validate_payload(payload.iloc[2:])]
    failed = {(e.name, e.unexpected_count) for e in in_helper[0].failed}
    assert failed == {
        ("expect_column_values_to_be_unique", 2),
        ("expect_column_values_to_be_between", 1),  # contact_id 0
        ("expect_column_values_to_match_regex", 1),  # phone "+38 050"
    }


def test_helpers_that_cannot_start_leave_the_work_here(messages, monkeypatch):
    with Offload(("no_such_module_anywhere",), enabled=True, log=messages.append) as offload:
        offload.start()  # the child exits on the failed import
        offload.submit(where_checked, 1)
        offload.submit(where_checked, 2)
        assert offload.results() == [(1, False), (2, False)]
    assert len(messages) == 1 and "exited while starting" in messages[0]

    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with Spreader(1, messages.append) as spreader:
        values = list(range(spread.MIN_SPREAD_VALUES))
        assert spreader.map(where_checked, values) == [(v, False) for v in values]
    with Offload((), enabled=True, log=messages.append) as offload:
        offload.start()
        offload.submit(where_checked, 3)
        assert offload.results() == [(3, False)]
    assert sum("could not start a helper process" in m for m in messages) == 2
