-- SQLite only (it compares timestamps as text): subscriber rows whose subscribed_at or
-- status_changed_at is not UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]' (an epoch number, an ISO 'T'
-- or an offset). The extract's window cannot place them: they are counted and reported.
SELECT COUNT(*)
FROM telegram_subscribers
WHERE typeof(subscribed_at) <> 'text'
   OR subscribed_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'
   OR subscribed_at GLOB '?????????????????????*[^0-9]*'
   OR (status_changed_at IS NOT NULL
       AND (typeof(status_changed_at) <> 'text'
            OR status_changed_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'
            OR status_changed_at GLOB '?????????????????????*[^0-9]*'))
