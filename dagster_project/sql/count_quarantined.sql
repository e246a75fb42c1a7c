-- Rows the diff held back for the quarantine: valid rows of a batch whose token eSputnik
-- refused before with the same identifiers (diff_new_tokens.sql leaves them out).
SELECT COUNT(*)
FROM esputnik_stage_valid v
WHERE v.batch_id = :batch_id
  AND EXISTS (
      SELECT 1
      FROM esputnik_token_quarantine q
      WHERE q.app_uuid = :app_uuid
        AND q.token = v.token
        AND q.fingerprint = v.fingerprint
  )
