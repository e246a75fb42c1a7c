-- Over the whole extracted range (already pushed rows included), the rows of each kind:
--   0  not an active subscriber with a chat id
--   1  active, with a CRM contact
--   2  active, no CRM contact, but a phone shared with the bot
--   3  active, no identifier candidate at all (no CRM contact and no phone)
-- A broken CRM join shows up here on every night's window. One CASE per row trims each value
-- once; three SUM(CASE ...) columns trimmed them three times, a third more time on SQLite.
-- {extract_query} is replaced by the extract query's text; values stay bound parameters.
SELECT
    CASE
        WHEN q.status IS NULL OR q.chat_id IS NULL
          OR LOWER(TRIM(q.status)) <> 'active' OR TRIM(CAST(q.chat_id AS VARCHAR(64))) = '' THEN 0
        WHEN q.crm_customer_id IS NOT NULL THEN 1
        WHEN q.bot_phone IS NULL OR TRIM(q.bot_phone) = '' THEN 3
        ELSE 2
    END AS kind,
    COUNT(*) AS row_count
FROM (
{extract_query}
) q
GROUP BY 1
