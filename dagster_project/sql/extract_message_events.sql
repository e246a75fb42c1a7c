-- Events at or after :since (the cursor minus a grace period for late arrivals), oldest first,
-- so an ingest stopped half-way resumes from what it applied. {and_app} is empty, or
-- "AND app_uuid = :app_uuid" when the table has that column.
SELECT token, message_id, status, reason, occurred_at
FROM esputnik_message_events
WHERE occurred_at >= :since {and_app}
ORDER BY occurred_at
