-- Stage the extracted rows whose token is not live in the ledger, inside the database that holds
-- both: on a nightly rerun only the new and the still-unsendable rows are copied. A row's token
-- here is its trimmed chat id; a row with other whitespace around it, or whose token eSputnik
-- dropped, is staged and left to the validation and the diff, which decide.
-- {extract_query} is the extract query's text (an operator may replace it); values stay bound
-- parameters.
INSERT INTO esputnik_stage_extract
    (batch_id, source_row, chat_id, subscriber_customer_id, bot_phone, status, subscribed_at,
     status_changed_at, crm_customer_id, esputnik_contact_id, crm_email, crm_phone)
SELECT :batch_id, ROW_NUMBER() OVER (), q.chat_id, q.subscriber_customer_id, q.bot_phone,
       q.status, q.subscribed_at, q.status_changed_at, q.crm_customer_id, q.esputnik_contact_id,
       q.crm_email, q.crm_phone
FROM (
{extract_query}
) q
WHERE NOT EXISTS (
    SELECT 1
    FROM esputnik_ledger_live l
    WHERE l.app_uuid = :app_uuid
      AND l.token = TRIM(CAST(q.chat_id AS VARCHAR(64)))
)
