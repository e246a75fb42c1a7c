-- Events dated before a point (a range count on the occurred_at index): compared with the count
-- taken when the previous ingest set that point, it gives the rows that landed later below it.
SELECT COUNT(*) FROM esputnik_message_events WHERE occurred_at < :before {and_app}
