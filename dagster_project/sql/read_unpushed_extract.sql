-- Staged rows of a batch whose token is not live in the ledger: only these need validating.
-- :recheck = 1 asks the ledger again where the extract could not (state in another database
-- than the warehouse); with 0 the staged rows are read as they are (the extract staged
-- unpushed rows only). The token is the trimmed chat id, as in stage_unpushed_extract.sql.
SELECT e.source_row, e.chat_id, e.subscriber_customer_id, e.bot_phone, e.status,
       e.subscribed_at, e.status_changed_at, e.crm_customer_id, e.esputnik_contact_id,
       e.crm_email, e.crm_phone
FROM esputnik_stage_extract e
WHERE e.batch_id = :batch_id
  AND (:recheck = 0 OR NOT EXISTS (
      SELECT 1
      FROM esputnik_ledger_live l
      WHERE l.app_uuid = :app_uuid
        AND l.token = TRIM(CAST(e.chat_id AS VARCHAR(64)))
  ))
ORDER BY e.source_row
