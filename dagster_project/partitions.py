"""Daily partitions on the subscriber's ``subscribed_at`` date (UTC)."""

import warnings

from dagster import BackfillPolicy, BetaWarning, DailyPartitionsDefinition

# end_offset=1 makes today's (still growing) day a partition too, so a nightly or hourly run
# can push today's subscribers; the lookback window picks up the rest of the day later.
subscribed_date_partitions = DailyPartitionsDefinition(
    start_date="2020-01-01", timezone="UTC", end_offset=1
)

# A range of days is one run: one extract query, one diff, one push.
single_run_backfill = BackfillPolicy.single_run()

# Dagster marks @asset(backfill_policy=...) beta and warns once per asset at every load (each
# run, each CLI call). The policy is this job's design, so only that message is silenced.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
