-- What the push still has to send for a batch: its new rows minus whatever the ledger gained
-- since the diff (an earlier attempt of this run, or another run that got there first) and the
-- tokens in doubt. ``sends``: earlier requests carrying the token that got no usable answer.
SELECT n.source_row, n.token, n.contact_id, n.external_customer_id, n.phone, n.email,
       n.fingerprint, COALESCE(d.sends, 0) AS sends
FROM esputnik_stage_new n
LEFT JOIN esputnik_token_in_doubt d
    ON d.app_uuid = :app_uuid
   AND d.token = n.token
WHERE n.batch_id = :batch_id
  AND COALESCE(d.sends, 0) < 2
  AND NOT {ledger_holds_live}
  AND NOT {quarantined_as_is}
