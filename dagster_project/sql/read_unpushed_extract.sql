-- Staged rows of a batch whose token is not already live in the ledger: only these need
-- validating. (The token is TRIM(chat_id); rows whose chat id carries other whitespace are
-- validated and then caught by the diff, which compares normalized tokens.)
SELECT e.source_row, e.chat_id, e.subscriber_customer_id, e.bot_phone, e.status,
       e.subscribed_at, e.status_changed_at, e.crm_customer_id, e.esputnik_contact_id,
       e.crm_email, e.crm_phone
FROM esputnik_stage_extract e
WHERE e.batch_id = :batch_id
  AND NOT {ledger_holds_live}
ORDER BY e.source_row
