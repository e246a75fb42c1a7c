-- Events without a time.
SELECT COUNT(*) FROM esputnik_message_events WHERE occurred_at IS NULL {and_app}
