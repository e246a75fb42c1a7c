-- Fragment: the latest event of a raw extract row {row}: its status change, else its subscription.
CASE
    WHEN {row}.status_changed_at > {row}.subscribed_at THEN {row}.status_changed_at
    ELSE {row}.subscribed_at
END
