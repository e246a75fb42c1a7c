-- Fragment: eSputnik refused the token of row {row} with the same identifiers (fingerprint)
-- before; such a row waits until its identifiers change.
EXISTS (
    SELECT 1
    FROM esputnik_token_quarantine q
    WHERE q.app_uuid = :app_uuid
      AND q.token = {row}.token
      AND q.fingerprint = {row}.fingerprint
)
