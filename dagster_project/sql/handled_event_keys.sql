-- Events already handled inside the re-read window (or without a timestamp): their keys, and
-- what the key is built from, so keys written in an older form still match.
SELECT event_key, token, message_id, status, occurred_at FROM esputnik_message_events_processed
WHERE app_uuid = :app_uuid AND occurred_at >= :since
UNION ALL
SELECT event_key, token, message_id, status, occurred_at FROM esputnik_message_events_rejected
WHERE app_uuid = :app_uuid AND (occurred_at >= :since OR occurred_at IS NULL)
