-- Events without a time: refused once each; read again only when their number changes.
SELECT token, message_id, status, reason, occurred_at
FROM esputnik_message_events
WHERE occurred_at IS NULL {and_app}
