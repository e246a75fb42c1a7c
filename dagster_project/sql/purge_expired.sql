-- Bounded growth: rejects, handled message events, the quarantine and ingest records past their
-- retention. The ledger is never purged. Events at or after :keep_events_from (the next read's
-- start) stay, so no event can be applied twice.
DELETE FROM esputnik_sync_rejects WHERE recorded_at < :rejects_before;
DELETE FROM esputnik_message_events_processed
WHERE app_uuid = :app_uuid AND occurred_at < :events_before AND occurred_at < :keep_events_from;
DELETE FROM esputnik_message_events_rejected
WHERE app_uuid = :app_uuid
  AND (occurred_at < :events_before AND occurred_at < :keep_events_from
       OR occurred_at IS NULL AND rejected_at < :events_before);
DELETE FROM esputnik_token_quarantine
WHERE app_uuid = :app_uuid AND quarantined_at < :quarantine_before;
DELETE FROM esputnik_events_ingests
WHERE app_uuid = :app_uuid AND ingested_at < :events_before
  AND ingested_at < (SELECT MAX(ingested_at) FROM esputnik_events_ingests WHERE app_uuid = :app_uuid)
