-- Valid rows of a batch held back because eSputnik refused the same token with the same
-- identifiers before.
SELECT COUNT(*)
FROM esputnik_stage_valid v
WHERE v.batch_id = :batch_id
  AND {quarantined_as_is}
