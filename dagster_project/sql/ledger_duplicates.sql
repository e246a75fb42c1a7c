-- Tokens this batch set out to send that the ledger holds more than once as live (not removed
-- by eSputnik) for the app. Only a push can add ledger rows, so checking each run's own tokens
-- covers the whole ledger over time, at a cost proportional to the run, not to the ledger.
SELECT COUNT(*)
FROM (
    SELECT l.token
    FROM esputnik_ledger_live l
    WHERE l.app_uuid = :app_uuid
      AND l.token IN (SELECT n.token FROM esputnik_stage_new n WHERE n.batch_id = :batch_id)
    GROUP BY l.token
    HAVING COUNT(*) > 1
) duplicated
