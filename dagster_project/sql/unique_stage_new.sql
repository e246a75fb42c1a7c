-- One row per token in a batch's list of tokens to send: a token listed twice would be sent
-- twice. First the tokens listed more than once (the index cannot be built over them), then
-- the index itself.
SELECT COUNT(*)
FROM (
    SELECT n.batch_id, n.token
    FROM esputnik_stage_new n
    GROUP BY n.batch_id, n.token
    HAVING COUNT(*) > 1
) duplicated;
CREATE UNIQUE INDEX ux_esputnik_stage_new_token
    ON esputnik_stage_new (batch_id, token)
