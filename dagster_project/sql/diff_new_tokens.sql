-- The tokens of a batch's valid rows that the push is to send: set-based anti-joins, no
-- per-row look-ups.
-- Left out: a token the ledger holds and eSputnik has not dropped before the subscriber's
-- latest event (a subscriber who came back after the drop gets the token pushed again), a token
-- eSputnik refused before with the same identifiers (the quarantine; it waits until they
-- change), and a token in doubt (two requests carrying it got no usable answer, so eSputnik may
-- hold it twice already; it waits for an explicit release).
INSERT INTO esputnik_stage_new (batch_id, token)
SELECT v.batch_id, v.token
FROM esputnik_stage_valid v
WHERE v.batch_id = :batch_id
  AND NOT EXISTS (
      SELECT 1
      FROM esputnik_token_ledger l
      WHERE l.app_uuid = :app_uuid
        AND l.token = v.token
        AND (l.removed_at IS NULL OR l.removed_at >= v.last_event_at)
  )
  AND NOT EXISTS (
      SELECT 1
      FROM esputnik_token_quarantine q
      WHERE q.app_uuid = :app_uuid
        AND q.token = v.token
        AND q.fingerprint = v.fingerprint
  )
  AND NOT EXISTS (
      SELECT 1
      FROM esputnik_token_in_doubt d
      WHERE d.app_uuid = :app_uuid
        AND d.token = v.token
        AND d.sends >= 2
  )
