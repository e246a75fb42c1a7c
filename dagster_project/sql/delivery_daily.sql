-- Processed events per day, status and reason since a day, for the delivery metrics.
SELECT DATE(occurred_at) AS day, status, reason, COUNT(*) AS events
FROM esputnik_message_events_processed
WHERE app_uuid = :app_uuid AND occurred_at >= :since
GROUP BY DATE(occurred_at), status, reason
