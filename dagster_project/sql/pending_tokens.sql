-- One keyed page of what the push still has to send for a batch: the next :page_size of its new
-- rows after token :after ('' for the first page), less what the ledger gained since the diff
-- (an earlier attempt of this run, or another run that got there first) and tokens in doubt.
-- ``sends``: earlier requests carrying the token that got no usable answer. The diff already
-- chose these rows, so a live ledger entry is all there is to ask (a token quarantined since
-- left esputnik_stage_new with its quarantine row).
-- The page walks the valid rows' (batch_id, token) index and looks each one up among the chosen
-- tokens (the other way round SQLite scanned the rest of the batch per row). LIMIT 1 OFFSET 0
-- keeps the NOT EXISTS a look-up per row read: as an anti-join PostgreSQL merged the whole
-- ledger (grown since its statistics were taken) into every page.
SELECT v.source_row, v.token, v.contact_id, v.external_customer_id, v.phone, v.email,
       v.fingerprint, COALESCE(d.sends, 0) AS sends
FROM esputnik_stage_valid v
JOIN esputnik_stage_new n
    ON n.batch_id = v.batch_id
   AND n.token = v.token
LEFT JOIN esputnik_token_in_doubt d
    ON d.app_uuid = :app_uuid
   AND d.token = v.token
WHERE v.batch_id = :batch_id
  AND v.token > :after
  AND COALESCE(d.sends, 0) < 2
  AND NOT EXISTS (
      SELECT 1
      FROM esputnik_ledger_live l
      WHERE l.app_uuid = :app_uuid
        AND l.token = v.token
      LIMIT 1 OFFSET 0
  )
ORDER BY v.token
LIMIT :page_size
