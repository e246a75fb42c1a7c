-- Keys of events already handled inside the re-read window (or without a timestamp).
SELECT event_key FROM esputnik_message_events_processed
WHERE app_uuid = :app_uuid AND occurred_at >= :since
UNION
SELECT event_key FROM esputnik_message_events_rejected
WHERE app_uuid = :app_uuid AND (occurred_at >= :since OR occurred_at IS NULL)
