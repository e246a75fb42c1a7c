-- The change cursor's anchors for one app: when its latest successful full read started, and
-- when its latest successful full or change run started (range runs and dry runs excluded).
SELECT
    MAX(CASE WHEN scope = 'full' THEN started_at END) AS last_full_at,
    MAX(started_at) AS last_success_at
FROM esputnik_sync_runs
WHERE app_uuid = :app_uuid
  AND status = 'succeeded'
  AND scope IN ('full', 'changes')
