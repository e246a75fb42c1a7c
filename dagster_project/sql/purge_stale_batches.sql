-- Staging rows of batches started before the cutoff, and refusals settled before it; their run
-- records stay.
DELETE FROM esputnik_stage_extract
WHERE batch_id IN (SELECT batch_id FROM esputnik_sync_runs WHERE started_at < :cutoff);
DELETE FROM esputnik_stage_valid
WHERE batch_id IN (SELECT batch_id FROM esputnik_sync_runs WHERE started_at < :cutoff);
DELETE FROM esputnik_stage_new
WHERE batch_id IN (SELECT batch_id FROM esputnik_sync_runs WHERE started_at < :cutoff);
DELETE FROM esputnik_settled_rejects
WHERE settled_at < :cutoff
