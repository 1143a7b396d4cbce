-- An administrator may give up on ("skip") a partner's message whose handler keeps failing,
-- so the rest of its handoff goes on. A skipped message is never applied, and counts as done
-- for the order: seq + 1 becomes ready as if it had been applied. Who skipped it, when and
-- why are kept with it. See backend/federation/admin.py.
ALTER TABLE federation_inbox
    ADD COLUMN skipped_at  timestamptz,
    ADD COLUMN skipped_by  text,                           -- the administrator's subject
    ADD COLUMN skip_reason text,
    ADD CONSTRAINT federation_inbox_applied_or_skipped CHECK (applied_at IS NULL OR skipped_at IS NULL),
    ADD CONSTRAINT federation_inbox_skip_recorded CHECK (
        (skipped_at IS NULL) = (skipped_by IS NULL) AND (skipped_at IS NULL) = (skip_reason IS NULL));

-- The applier looks only at messages still to apply: skipped ones leave the index.
DROP INDEX federation_inbox_pending;
CREATE INDEX federation_inbox_pending ON federation_inbox (next_attempt_at)
    WHERE applied_at IS NULL AND skipped_at IS NULL;
