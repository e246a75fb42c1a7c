-- The ledger's live entries: tokens eSputnik accepted and has not dropped since. Every "already
-- pushed?" question reads this view; the unique index ux_esputnik_token_ledger_live keeps one
-- such row per token and app. (Only the diff also asks whether a dropped token's subscriber
-- came back after the drop: diff_new_tokens.sql.)
CREATE VIEW esputnik_ledger_live AS
SELECT app_uuid, token, contact_id, external_customer_id, phone, email, pushed_at, run_id,
       chunk_no
FROM esputnik_token_ledger
WHERE removed_at IS NULL
