"""Circuit-breaker verdicts, without Dagster."""

import pytest

from dagster_project.core.guards import identifier_completeness, mass_change


@pytest.mark.parametrize(
    ("anonymous", "sendable", "limit", "passed"),
    [
        (0, 100, 0.25, True),
        (25, 100, 0.25, True),
        (26, 100, 0.25, False),
        (0, 0, 0.25, True),
        (90, 100, 0.95, True),
    ],
)
def test_identifier_completeness(anonymous, sendable, limit, passed):
    verdict = identifier_completeness(anonymous, sendable, limit)
    assert verdict.passed is passed
    assert ("push is blocked" in verdict.description) is not passed


@pytest.mark.parametrize(
    ("new", "history", "passed"),
    [
        (50_000, [], True),  # initial load: nothing to compare
        (900, [10, 12, 8], True),  # under the floor of 1000
        (1_500, [200, 100, 150], True),  # within 10x the average of 150
        (1_501, [200, 100, 150], False),
        (20_000, [10, 10], False),
    ],
)
def test_mass_change(new, history, passed):
    verdict = mass_change(new, history, max_multiple=10, min_tokens=1000, overridden=False)
    assert verdict.passed is passed
    if not passed:
        assert "SYNC_ALLOW_MASS_CHANGE" in verdict.description


def test_mass_change_override_passes_and_says_so():
    verdict = mass_change(20_000, [10, 10], max_multiple=10, min_tokens=1000, overridden=True)
    assert verdict.passed and "overridden" in verdict.description
