-- The latest event time already handled for the app, processed or set aside. Times after
-- :latest (now plus the tolerance) never count: a row dated in the future must not move it.
SELECT MAX(occurred_at) FROM (
    SELECT occurred_at FROM esputnik_message_events_processed
    WHERE app_uuid = :app_uuid AND occurred_at <= :latest
    UNION ALL
    SELECT occurred_at FROM esputnik_message_events_rejected
    WHERE app_uuid = :app_uuid AND occurred_at <= :latest
) handled
