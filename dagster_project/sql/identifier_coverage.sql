-- Over the whole staged range (already pushed rows included): active subscribers, and how many
-- of them have no identifier candidate at all (no CRM contact and no phone shared with the bot)
-- or no CRM contact. A broken CRM join shows up here on every night's full window.
SELECT
    SUM(CASE WHEN LOWER(TRIM(status)) = 'active' AND TRIM(chat_id) <> ''
             THEN 1 ELSE 0 END) AS active_rows,
    SUM(CASE WHEN LOWER(TRIM(status)) = 'active' AND TRIM(chat_id) <> ''
              AND crm_customer_id IS NULL AND (bot_phone IS NULL OR TRIM(bot_phone) = '')
             THEN 1 ELSE 0 END) AS without_identifier,
    SUM(CASE WHEN LOWER(TRIM(status)) = 'active' AND TRIM(chat_id) <> ''
              AND crm_customer_id IS NULL
             THEN 1 ELSE 0 END) AS without_crm_link
FROM esputnik_stage_extract
WHERE batch_id = :batch_id
