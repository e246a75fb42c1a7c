-- Staged rows of a batch whose token is not already live in the ledger: only these need
-- validating. {and_not_pushed} checks the ledger again where the extract could not (state in
-- another database than the warehouse); it is empty where the extract staged unpushed rows only.
SELECT e.source_row, e.chat_id, e.subscriber_customer_id, e.bot_phone, e.status,
       e.subscribed_at, e.status_changed_at, e.crm_customer_id, e.esputnik_contact_id,
       e.crm_email, e.crm_phone
FROM esputnik_stage_extract e
WHERE e.batch_id = :batch_id
  {and_not_pushed}
ORDER BY e.source_row
