-- Tokens the ledger holds more than once as live (not removed by eSputnik) for one app.
SELECT COUNT(*)
FROM (
    SELECT token
    FROM esputnik_token_ledger
    WHERE app_uuid = :app_uuid
      AND removed_at IS NULL
    GROUP BY token
    HAVING COUNT(*) > 1
) duplicated
