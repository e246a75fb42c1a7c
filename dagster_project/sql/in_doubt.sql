-- Fragment: the token of row {row} is in doubt for the app: two requests carrying it got no
-- usable answer, so eSputnik may hold it twice already. It waits for an explicit release.
EXISTS (
    SELECT 1
    FROM esputnik_token_in_doubt d
    WHERE d.app_uuid = :app_uuid
      AND d.token = {row}.token
      AND d.sends >= 2
)
