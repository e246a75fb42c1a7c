-- Fragment: the ledger holds the token {token} live for the app, i.e. pushed and not dropped by
-- eSputnik before {last_event_at}, the row's latest event (a subscriber who came back after
-- the drop needs the token pushed again). Used wherever "already pushed?" is asked.
EXISTS (
    SELECT 1
    FROM esputnik_token_ledger l
    WHERE l.app_uuid = :app_uuid
      AND l.token = {token}
      AND (l.removed_at IS NULL OR l.removed_at >= {last_event_at})
)
