-- What the push still has to send for a batch: its new rows minus whatever the ledger gained
-- since the diff (an earlier attempt of this run, or another run that got there first).
SELECT n.source_row, n.token, n.contact_id, n.external_customer_id, n.phone, n.email,
       n.fingerprint
FROM esputnik_stage_new n
WHERE n.batch_id = :batch_id
  AND NOT EXISTS (
      SELECT 1
      FROM esputnik_token_ledger l
      WHERE l.app_uuid = :app_uuid
        AND l.token = n.token
        AND (l.removed_at IS NULL OR l.removed_at >= n.last_event_at)
  )
  AND NOT EXISTS (
      SELECT 1
      FROM esputnik_token_quarantine q
      WHERE q.app_uuid = :app_uuid
        AND q.token = n.token
        AND q.fingerprint = n.fingerprint
  )
ORDER BY n.source_row
