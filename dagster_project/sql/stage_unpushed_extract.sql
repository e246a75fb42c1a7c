-- Stage the extracted rows whose token is not live in the ledger, inside the database that holds
-- both: on a nightly rerun only the new and the still-unsendable rows are copied.
-- {extract_query} is replaced by the extract query's text; values stay bound parameters.
INSERT INTO esputnik_stage_extract
    (batch_id, source_row, chat_id, subscriber_customer_id, bot_phone, status, subscribed_at,
     status_changed_at, crm_customer_id, esputnik_contact_id, crm_email, crm_phone)
SELECT :batch_id, ROW_NUMBER() OVER (), q.chat_id, q.subscriber_customer_id, q.bot_phone,
       q.status, q.subscribed_at, q.status_changed_at, q.crm_customer_id, q.esputnik_contact_id,
       q.crm_email, q.crm_phone
FROM (
{extract_query}
) q
WHERE NOT {ledger_holds_live}
