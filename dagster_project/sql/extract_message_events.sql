-- Events at or after the cursor (minus a grace period for late arrivals), plus events without a
-- timestamp, which are refused once and remembered by their key.
SELECT token, message_id, status, reason, occurred_at
FROM esputnik_message_events
WHERE occurred_at >= :since OR occurred_at IS NULL
