-- Valid rows of a batch held back because eSputnik refused the same token with the same
-- identifiers before.
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
