-- What the push still has to send for a batch: its new rows minus whatever the ledger gained
-- since the diff (an earlier attempt of this run, or another run that got there first).
SELECT n.source_row, n.token, n.contact_id, n.external_customer_id, n.phone, n.email,
       n.fingerprint
FROM esputnik_stage_new n
WHERE n.batch_id = :batch_id
  AND NOT {ledger_holds_live}
  AND NOT {quarantined_as_is}
ORDER BY n.source_row
