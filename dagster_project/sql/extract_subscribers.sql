-- Bot subscribers whose subscribed_at falls in [window_start, window_end), joined to the CRM.
-- A run over every subscriber binds the widest window (1900-01-01 .. 9999-12-31).
-- To read your own tables, copy this file, keep the output column names and the two bound
-- parameters (window_start, window_end), and point WAREHOUSE_EXTRACT_SQL at the copy.
-- crm_updated_at is optional: with a separate state database (SYNC_STATE_URL) the change
-- cursor reads it, beside subscribed_at and status_changed_at, to find changed rows.
-- "--" comments are removed before the query runs; avoid "--" inside string literals.
SELECT
    s.chat_id             AS chat_id,
    s.customer_id         AS subscriber_customer_id,
    s.phone               AS bot_phone,
    s.status              AS status,
    s.subscribed_at       AS subscribed_at,
    s.status_changed_at   AS status_changed_at,
    c.customer_id         AS crm_customer_id,
    c.esputnik_contact_id AS esputnik_contact_id,
    c.email               AS crm_email,
    c.phone               AS crm_phone,
    c.updated_at          AS crm_updated_at
FROM telegram_subscribers s
LEFT JOIN crm_contacts c ON c.customer_id = s.customer_id
WHERE s.subscribed_at >= :window_start
  AND s.subscribed_at < :window_end
