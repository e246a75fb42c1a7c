"""Daily partitions on the subscriber's ``subscribed_at`` date (UTC)."""

from dagster import BackfillPolicy, DailyPartitionsDefinition

subscribed_date_partitions = DailyPartitionsDefinition(start_date="2020-01-01", timezone="UTC")

# A range of days is one run: one extract query, one diff, one push.
single_run_backfill = BackfillPolicy.single_run()
