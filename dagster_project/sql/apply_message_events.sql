-- Staged events whose token the ledger never held for the app are set aside...
INSERT INTO esputnik_message_events_rejected
    (app_uuid, event_key, token, message_id, status, reason, occurred_at, rejection, run_id,
     rejected_at)
SELECT :app_uuid, e.event_key, e.token, e.message_id, e.status, e.reason, e.occurred_at,
       'unknown_token', :run_id, :now
FROM esputnik_stage_events e
WHERE e.batch_id = :batch_id
  AND NOT EXISTS (
      SELECT 1 FROM esputnik_token_ledger l WHERE l.app_uuid = :app_uuid AND l.token = e.token
  );

-- ...the others are recorded as processed...
INSERT INTO esputnik_message_events_processed
    (app_uuid, event_key, token, message_id, status, reason, occurred_at, run_id, processed_at)
SELECT :app_uuid, e.event_key, e.token, e.message_id, e.status, e.reason, e.occurred_at,
       :run_id, :now
FROM esputnik_stage_events e
WHERE e.batch_id = :batch_id
  AND EXISTS (
      SELECT 1 FROM esputnik_token_ledger l WHERE l.app_uuid = :app_uuid AND l.token = e.token
  );

-- ...and a FAILED/Forbidden after a push marks that push as removed by eSputnik (history kept:
-- the row stays, with the time of the first such failure). Only tokens with a failure in this
-- batch are looked at; a failure older than the push leaves removed_at NULL...
UPDATE esputnik_token_ledger
SET removed_at = (
        SELECT MIN(e.occurred_at)
        FROM esputnik_stage_events e
        WHERE e.batch_id = :batch_id
          AND e.token = esputnik_token_ledger.token
          AND e.status = 'FAILED'
          AND LOWER(e.reason) = 'forbidden'
          AND e.occurred_at >= esputnik_token_ledger.pushed_at
    )
WHERE app_uuid = :app_uuid
  AND removed_at IS NULL
  AND token IN (SELECT f.token FROM esputnik_stage_events f WHERE f.batch_id = :batch_id AND f.status = 'FAILED');

-- ...and the rows just marked get their reason.
UPDATE esputnik_token_ledger
SET removal_reason = 'removed_by_esputnik: FAILED Forbidden'
WHERE app_uuid = :app_uuid
  AND removed_at IS NOT NULL
  AND removal_reason IS NULL
  AND token IN (SELECT f.token FROM esputnik_stage_events f WHERE f.batch_id = :batch_id AND f.status = 'FAILED')
