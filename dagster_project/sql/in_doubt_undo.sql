-- A resend counted ahead got a clear answer that eSputnik stored nothing (400, 413, 429/503
-- spent, no connection): take the count back, and the row when nothing is left in doubt.
UPDATE esputnik_token_in_doubt
SET sends = sends - 1
WHERE app_uuid = :app_uuid
  AND token = :token;
DELETE FROM esputnik_token_in_doubt
WHERE app_uuid = :app_uuid
  AND token = :token
  AND sends <= 0
