-- Webhook subscriptions: a department's (or, for admins, every department's) published
-- stream, delivered in signed batches to a URL, at least once and in order.

-- A worker claims a subscription by writing a fresh lease token and pushing leased_until
-- out (committed at once); it records the batch's outcome only where the row still carries
-- that token, so a worker that outlived its lease cannot overwrite its successor's work.
-- A re-drive bumps `revision`: an outcome of a batch claimed before it moves no cursor.
CREATE TABLE webhook_subscriptions (
    id                   uuid        PRIMARY KEY,
    department           text,                      -- NULL: every department (admins only)
    url                  text        NOT NULL,
    secret_key_id        text        NOT NULL,      -- the data key the secret is sealed under
    secret_sealed        bytea       NOT NULL,      -- AES-GCM nonce + ciphertext
    personal             boolean     NOT NULL,      -- personal data in the clear
    status               text        NOT NULL CHECK (status IN ('active', 'paused')),
    paused_reason        text,
    cursor               bigint      NOT NULL CHECK (cursor >= 0),
    revision             integer     NOT NULL DEFAULT 0,
    delivered_events     bigint      NOT NULL DEFAULT 0,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz NOT NULL,
    lease                uuid,
    leased_until         timestamptz NOT NULL DEFAULT '-infinity',
    last_success_at      timestamptz,
    last_error           text,
    last_status          integer,
    created_by           text        NOT NULL,
    created_at           timestamptz NOT NULL
);
CREATE INDEX webhook_subscriptions_due ON webhook_subscriptions (next_attempt_at) WHERE status = 'active';
CREATE INDEX webhook_subscriptions_department ON webhook_subscriptions (department, created_at);

-- The latest attempts of each subscription (older ones are pruned), for its status page.
CREATE TABLE webhook_attempts (
    id              bigserial   PRIMARY KEY,
    subscription_id uuid        NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    delivery_id     uuid        NOT NULL,
    at              timestamptz NOT NULL,
    status_code     integer,                        -- NULL: no answer (refused, timed out ...)
    error           text,                           -- NULL: a 2xx
    events          integer     NOT NULL,
    cursor          bigint      NOT NULL,           -- the last position in the batch
    duration_ms     integer     NOT NULL
);
CREATE INDEX webhook_attempts_subscription ON webhook_attempts (subscription_id, id DESC);
