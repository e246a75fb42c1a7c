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

CREATE INDEX IF NOT EXISTS ix_telegram_subscribers_subscribed_at
    ON telegram_subscribers (subscribed_at);
