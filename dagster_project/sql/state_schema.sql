-- Sync state: staging of each batch, the ledger of pushed tokens and the rejects.
-- Lives in the warehouse database unless SYNC_STATE_URL names another one.
-- Runs unchanged on SQLite and PostgreSQL.

-- Raw rows of one batch, copied from the warehouse extract.
CREATE TABLE IF NOT EXISTS esputnik_stage_extract (
    batch_id TEXT NOT NULL,
    source_row BIGINT NOT NULL,
    chat_id TEXT,
    subscriber_customer_id TEXT,
    bot_phone TEXT,
    status TEXT,
    subscribed_at TIMESTAMP,
    status_changed_at TIMESTAMP,
    crm_customer_id TEXT,
    esputnik_contact_id TEXT,
    crm_email TEXT,
    crm_phone TEXT
);
-- A batch's rows in extract order: validation reads them back in that order without a sort.
CREATE INDEX IF NOT EXISTS ix_esputnik_stage_extract_batch_row
    ON esputnik_stage_extract (batch_id, source_row);
DROP INDEX IF EXISTS ix_esputnik_stage_extract_batch;

-- Rows of one batch that passed validation, one per token, identifiers normalized.
CREATE TABLE IF NOT EXISTS esputnik_stage_valid (
    batch_id TEXT NOT NULL,
    source_row BIGINT NOT NULL,
    token TEXT NOT NULL,
    contact_id BIGINT,
    external_customer_id TEXT,
    phone TEXT,
    email TEXT,
    fingerprint TEXT NOT NULL,
    last_event_at TIMESTAMP
);
CREATE INDEX IF NOT EXISTS ix_esputnik_stage_valid_batch ON esputnik_stage_valid (batch_id, token);

-- The tokens of one batch's valid rows that the diff chose to send; the push reads their rows
-- from esputnik_stage_valid.
CREATE TABLE IF NOT EXISTS esputnik_stage_new (
    batch_id TEXT NOT NULL,
    token TEXT NOT NULL
);
-- Its key is the unique index ux_esputnik_stage_new_token (core/schema.py, UNIQUE_INDEXES); the
-- plain index on the same columns that older versions built is dropped.
DROP INDEX IF EXISTS ix_esputnik_stage_new_batch;

-- Every token eSputnik accepted, per app, with the identifiers it was sent with.
CREATE TABLE IF NOT EXISTS esputnik_token_ledger (
    app_uuid TEXT NOT NULL,
    token TEXT NOT NULL,
    contact_id BIGINT,
    external_customer_id TEXT,
    phone TEXT,
    email TEXT,
    pushed_at TIMESTAMP NOT NULL,
    run_id TEXT NOT NULL,
    chunk_no INTEGER NOT NULL,
    removed_at TIMESTAMP,
    removal_reason TEXT
);
-- Every sync asks "is this token live for this app?" once per extracted row: token first (the
-- selective key) and removed_at included, so the answer comes from the index alone.
CREATE INDEX IF NOT EXISTS ix_esputnik_token_ledger_live
    ON esputnik_token_ledger (token, app_uuid, removed_at);
-- Superseded by ix_esputnik_token_ledger_live (state tables created by older versions).
DROP INDEX IF EXISTS ix_esputnik_token_ledger_token;

-- Tokens eSputnik refused with 400 even when sent alone, with its reason. They are not sent
-- again while their identifiers (fingerprint) stay the same.
CREATE TABLE IF NOT EXISTS esputnik_token_quarantine (
    app_uuid TEXT NOT NULL,
    token TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    reason TEXT NOT NULL,
    run_id TEXT NOT NULL,
    quarantined_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_esputnik_token_quarantine_token
    ON esputnik_token_quarantine (app_uuid, token);

-- Tokens carried by requests that got no usable answer (a read timeout, a connection dropped
-- after the request went out, 500/502/504): eSputnik may hold them already. ``sends`` counts
-- those requests, a resend being counted before it goes out. At 2 the token is in doubt: never
-- sent again until released (python -m dagster_project.release in-doubt). A 2xx for the token
-- removes its row in the ledger write's transaction.
CREATE TABLE IF NOT EXISTS esputnik_token_in_doubt (
    app_uuid TEXT NOT NULL,
    token TEXT NOT NULL,
    sends INTEGER NOT NULL,
    contact_id BIGINT,
    external_customer_id TEXT,
    phone TEXT,
    email TEXT,
    run_id TEXT NOT NULL,
    chunk_no INTEGER NOT NULL,
    noted_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_esputnik_token_in_doubt
    ON esputnik_token_in_doubt (app_uuid, token);

-- Token groups (all staged rows of one token) refused before under the same rules: an identical
-- group in a later run is not validated or recorded again (core/settled.py). Forgotten with the
-- staging rows, so every refusal is re-checked now and then.
CREATE TABLE IF NOT EXISTS esputnik_settled_rejects (
    app_uuid TEXT NOT NULL,
    rules TEXT NOT NULL,
    token TEXT NOT NULL,
    group_hash BIGINT NOT NULL,
    batch_id TEXT NOT NULL,
    settled_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_esputnik_settled_rejects_rules
    ON esputnik_settled_rejects (app_uuid, rules);
CREATE INDEX IF NOT EXISTS ix_esputnik_settled_rejects_batch
    ON esputnik_settled_rejects (batch_id);

-- Rows not sent (outcome 'rejected') and identifiers left out of a payload
-- (outcome 'identifier_dropped'), each with its reason.
CREATE TABLE IF NOT EXISTS esputnik_sync_rejects (
    run_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    source_row BIGINT,
    chat_id TEXT,
    customer_id TEXT,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_esputnik_sync_rejects_run ON esputnik_sync_rejects (run_id);
CREATE INDEX IF NOT EXISTS ix_esputnik_sync_rejects_batch ON esputnik_sync_rejects (batch_id);

-- One row per sync run (batch): what it read (scope 'full', 'range' or 'changes', the
-- subscribed_at window, and for 'changes' the cursor) and what each phase did.
CREATE TABLE IF NOT EXISTS esputnik_sync_runs (
    batch_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    app_uuid TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    scope TEXT,
    changed_since TIMESTAMP,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status TEXT NOT NULL,
    failure_reason TEXT,
    rows_extracted BIGINT,
    rows_staged BIGINT,
    active_rows BIGINT,
    rows_without_identifier BIGINT,
    rows_without_crm_link BIGINT,
    rows_valid BIGINT,
    rows_rejected BIGINT,
    identifiers_dropped BIGINT,
    tokens_already_pushed BIGINT,
    tokens_new BIGINT,
    tokens_quarantine_skipped BIGINT,
    tokens_pushed BIGINT,
    tokens_quarantined BIGINT,
    chunks_pushed BIGINT,
    requests_sent BIGINT,
    extract_seconds DOUBLE PRECISION,
    validate_seconds DOUBLE PRECISION,
    diff_seconds DOUBLE PRECISION,
    push_seconds DOUBLE PRECISION,
    sending_seconds DOUBLE PRECISION,
    requests_per_second_limit DOUBLE PRECISION
);

-- Message events of one ingest batch that passed the row checks, before the ledger join.
CREATE TABLE IF NOT EXISTS esputnik_stage_events (
    batch_id TEXT NOT NULL,
    event_key TEXT NOT NULL,
    token TEXT NOT NULL,
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    occurred_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_esputnik_stage_events_batch ON esputnik_stage_events (batch_id);

-- Every message event applied to the ledger, once (event_key is unique in practice).
CREATE TABLE IF NOT EXISTS esputnik_message_events_processed (
    app_uuid TEXT NOT NULL,
    event_key TEXT NOT NULL,
    token TEXT NOT NULL,
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    occurred_at TIMESTAMP NOT NULL,
    run_id TEXT NOT NULL,
    processed_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_esputnik_events_processed_at
    ON esputnik_message_events_processed (app_uuid, occurred_at);

-- Message events set aside (unknown status, unknown token, malformed row) with the reason.
CREATE TABLE IF NOT EXISTS esputnik_message_events_rejected (
    app_uuid TEXT NOT NULL,
    event_key TEXT NOT NULL,
    token TEXT,
    message_id TEXT,
    status TEXT,
    reason TEXT,
    occurred_at TIMESTAMP,
    rejection TEXT NOT NULL,
    run_id TEXT NOT NULL,
    rejected_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_esputnik_events_rejected_at
    ON esputnik_message_events_rejected (app_uuid, occurred_at);

-- Delivery figures per day, recomputed from the processed events.
CREATE TABLE IF NOT EXISTS esputnik_delivery_daily (
    app_uuid TEXT NOT NULL,
    day TEXT NOT NULL,
    sent BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    failed_forbidden BIGINT NOT NULL,
    clicked BIGINT NOT NULL,
    click_rate DOUBLE PRECISION,
    blocked_rate DOUBLE PRECISION,
    computed_at TIMESTAMP NOT NULL
);

-- One row per message-event ingest: where the next one reads from and how many source rows lay
-- before that point then (rows landing later below it were never read: they are counted), and
-- how many source rows had no time (read again only when that number changes).
CREATE TABLE IF NOT EXISTS esputnik_events_ingests (
    app_uuid TEXT NOT NULL,
    run_id TEXT NOT NULL,
    ingested_at TIMESTAMP NOT NULL,
    next_from TIMESTAMP NOT NULL,
    rows_before_next_from BIGINT NOT NULL,
    undated_rows BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_esputnik_events_ingests_app
    ON esputnik_events_ingests (app_uuid, ingested_at);

-- Retention (purge_expired) deletes by these times.
CREATE INDEX IF NOT EXISTS ix_esputnik_sync_rejects_recorded ON esputnik_sync_rejects (recorded_at);
CREATE INDEX IF NOT EXISTS ix_esputnik_token_quarantine_at
    ON esputnik_token_quarantine (app_uuid, quarantined_at);
