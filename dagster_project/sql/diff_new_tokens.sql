-- Valid rows of a batch whose token the ledger does not hold (or holds only as removed by
-- eSputnik before the subscriber's latest event), that are not quarantined with the same
-- identifiers and not in doubt: set-based anti-joins, no per-row look-ups. {...} are fragments
-- (sql/*.sql).
INSERT INTO esputnik_stage_new
    (batch_id, source_row, token, contact_id, external_customer_id, phone, email, fingerprint,
     last_event_at)
SELECT v.batch_id, v.source_row, v.token, v.contact_id, v.external_customer_id, v.phone, v.email,
       v.fingerprint, v.last_event_at
FROM esputnik_stage_valid v
WHERE v.batch_id = :batch_id
  AND NOT {ledger_holds_live}
  AND NOT {quarantined_as_is}
  AND NOT {in_doubt}
