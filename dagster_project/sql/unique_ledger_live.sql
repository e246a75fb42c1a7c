-- One live row per token and app, enforced by the database: a second copy of a token in the
-- ledger can only come from a token sent twice. First the tokens held live more than once
-- (the index cannot be built over them), then the index itself.
SELECT COUNT(*)
FROM (
    SELECT l.app_uuid, l.token
    FROM esputnik_token_ledger l
    WHERE l.removed_at IS NULL
    GROUP BY l.app_uuid, l.token
    HAVING COUNT(*) > 1
) duplicated;
CREATE UNIQUE INDEX ux_esputnik_token_ledger_live
    ON esputnik_token_ledger (app_uuid, token)
    WHERE removed_at IS NULL
