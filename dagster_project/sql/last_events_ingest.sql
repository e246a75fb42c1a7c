-- The app's latest message-event ingest.
SELECT next_from, rows_before_next_from, undated_rows
FROM esputnik_events_ingests
WHERE app_uuid = :app_uuid
ORDER BY ingested_at DESC
LIMIT 1
