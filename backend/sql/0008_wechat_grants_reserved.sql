-- A claim looks up the grants its notifications reserved before (a retry, or a dispatcher that
-- died) by reserved_by. Without an index that read walked every open grant, and open grants
-- pile up: a user may accept a subscription that no notification ever uses. About 1 ms a claim
-- at 13,600 open grants in bench/notify.py, growing with the table.
CREATE INDEX wechat_grants_reserved ON wechat_grants (reserved_by)
    WHERE reserved_by IS NOT NULL AND spent_at IS NULL;
