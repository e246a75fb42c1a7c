"""How fresh the pushed tokens must be: one rule for the UI's freshness policy and the alert."""

from datetime import timedelta

from dagster import FreshnessPolicy

# A nightly schedule plus two hours of slack: a night with no finished sync is stale by morning.
FRESHNESS_HOURS = 26

pushed_tokens_freshness = FreshnessPolicy.time_window(fail_window=timedelta(hours=FRESHNESS_HOURS))
