-- Reference warehouse schema: the CRM contacts and the Telegram bot's subscribers.
-- Runs unchanged on SQLite and PostgreSQL. Timestamps are UTC; on SQLite store them as
-- ISO text 'YYYY-MM-DD HH:MM:SS' so range filters compare correctly.
CREATE TABLE IF NOT EXISTS crm_contacts (
    customer_id VARCHAR(64) PRIMARY KEY,
    esputnik_contact_id BIGINT NULL,
    email VARCHAR(320) NULL,
    phone VARCHAR(64) NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS telegram_subscribers (
    chat_id VARCHAR(64) NOT NULL,
    customer_id VARCHAR(64) NULL,
    phone VARCHAR(64) NULL,
    status VARCHAR(16) NOT NULL, -- 'active' | 'blocked'
    subscribed_at TIMESTAMP NOT NULL,
    status_changed_at TIMESTAMP NULL
);

-- The extract reads a window of subscribed_at. This index holds every column it reads, so the
-- window comes out of the index in order instead of one random table read per row (on SQLite
-- about twice as fast over 1M randomly ordered rows; see README, Performance).
CREATE INDEX IF NOT EXISTS ix_telegram_subscribers_window
    ON telegram_subscribers (subscribed_at, chat_id, customer_id, phone, status, status_changed_at);
