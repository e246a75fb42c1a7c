-- Over the whole extracted range (already pushed rows included): all rows, active subscribers,
-- and how many of those have no identifier candidate at all (no CRM contact and no phone shared
-- with the bot) or no CRM contact. A broken CRM join shows up here on every night's window.
-- {extract_query} is replaced by the extract query's text; values stay bound parameters.
SELECT
    COUNT(*) AS rows_extracted,
    SUM(CASE WHEN LOWER(TRIM(q.status)) = 'active' AND TRIM(q.chat_id) <> ''
             THEN 1 ELSE 0 END) AS active_rows,
    SUM(CASE WHEN LOWER(TRIM(q.status)) = 'active' AND TRIM(q.chat_id) <> ''
              AND q.crm_customer_id IS NULL AND (q.bot_phone IS NULL OR TRIM(q.bot_phone) = '')
             THEN 1 ELSE 0 END) AS rows_without_identifier,
    SUM(CASE WHEN LOWER(TRIM(q.status)) = 'active' AND TRIM(q.chat_id) <> ''
              AND q.crm_customer_id IS NULL
             THEN 1 ELSE 0 END) AS rows_without_crm_link
FROM (
{extract_query}
) q
