-- The latest event time already handled for the app, processed or set aside.
SELECT MAX(occurred_at) FROM (
    SELECT occurred_at FROM esputnik_message_events_processed WHERE app_uuid = :app_uuid
    UNION ALL
    SELECT occurred_at FROM esputnik_message_events_rejected WHERE app_uuid = :app_uuid
) handled
