-- eSputnik message statuses, landed in the warehouse by the team (webhook receiver or export).
-- One row per status change of one message to one token: SENT, FAILED (with reason, e.g.
-- 'Forbidden' when the user blocked the bot) or CLICKED. occurred_at is UTC.
-- Several apps in one table: add app_uuid VARCHAR(36) (each row's ESPUTNIK_APP_UUID); each app
-- then reads only its own rows. Without it the table belongs to one app.
CREATE TABLE IF NOT EXISTS esputnik_message_events (
    token VARCHAR(255),
    message_id VARCHAR(64),
    status VARCHAR(16),
    reason VARCHAR(255),
    occurred_at TIMESTAMP
);
CREATE INDEX IF NOT EXISTS ix_esputnik_message_events_occurred_at
    ON esputnik_message_events (occurred_at);
