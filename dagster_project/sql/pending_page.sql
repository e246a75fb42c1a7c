-- One keyed page of the pending tokens: the next :page_size after token :after. Each page is a
-- statement of its own, so no transaction stays open while the push sends.
SELECT *
FROM ({pending}) pending
WHERE pending.token > :after
ORDER BY pending.token
LIMIT :page_size
