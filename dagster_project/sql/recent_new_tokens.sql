-- New-token counts of the app's latest finished runs, for the mass-change guard.
SELECT tokens_new
FROM esputnik_sync_runs
WHERE app_uuid = :app_uuid
  AND batch_id <> :batch_id
  AND status = 'succeeded'
  AND tokens_new IS NOT NULL
ORDER BY started_at DESC
LIMIT :runs
