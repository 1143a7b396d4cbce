-- Cross-city 通办 messaging: what we send partner cities (outbox), what they sent us
-- (inbox), and every message we refused. See backend/federation/.

-- Our messages to partner cities, each delivered at least once by the relay. A row is
-- written in the same transaction as whatever decided to send it; the relay claims due
-- rows by writing a fresh lease token (committed at once) and records the outcome only
-- where the row still carries that token. seq numbers one handoff's messages to one
-- partner from 1; the receiver applies them in that order.
CREATE TABLE federation_outbox (
    message_id           uuid        PRIMARY KEY,      -- the receiver's dedupe key (signed header)
    partner              text        NOT NULL,         -- the receiving city's 6-digit region code
    handoff              uuid        NOT NULL,
    seq                  integer     NOT NULL CHECK (seq >= 1),
    kind                 text        NOT NULL,
    body                 bytea       NOT NULL,         -- the Envelope JSON, sent byte for byte each time
    created_at           timestamptz NOT NULL,
    delivered_at         timestamptz,                  -- a 2xx answer: accepted, or already had it
    attempts             integer     NOT NULL DEFAULT 0,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz NOT NULL DEFAULT '-infinity',
    last_error           text,
    last_status          integer,                      -- NULL: no answer (refused, timed out ...)
    lease                uuid,
    leased_until         timestamptz NOT NULL DEFAULT '-infinity',
    UNIQUE (partner, handoff, seq)
);
CREATE INDEX federation_outbox_due ON federation_outbox (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX federation_outbox_created ON federation_outbox (created_at DESC);

-- Partner cities' messages to us, each stored once (by sender and message id) and applied
-- once, in seq order per sender and handoff: a message waits until its predecessor is
-- applied. A handler that raises leaves `error` and a later `next_attempt_at`.
CREATE TABLE federation_inbox (
    partner         text        NOT NULL,              -- the sender's region code, as verified
    message_id      uuid        NOT NULL,
    handoff         uuid        NOT NULL,
    seq             integer     NOT NULL CHECK (seq >= 1),
    kind            text        NOT NULL,
    body            bytea       NOT NULL,              -- the Envelope JSON as received
    received_at     timestamptz NOT NULL,
    applied_at      timestamptz,
    attempts        integer     NOT NULL DEFAULT 0,    -- handler runs that raised
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    error           text,                              -- the last handler failure, kept once applied
    PRIMARY KEY (partner, message_id),
    UNIQUE (partner, handoff, seq)
);
CREATE INDEX federation_inbox_pending ON federation_inbox (next_attempt_at) WHERE applied_at IS NULL;
CREATE INDEX federation_inbox_received ON federation_inbox (received_at DESC);

-- Every message the inbox endpoint refused, and why: the newest are kept (pruned on insert).
CREATE TABLE federation_refusals (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL,
    region     text,                                   -- as claimed by the sender, unverified
    message_id uuid,                                   -- when the header was readable
    kind       text        NOT NULL,                   -- stale, signature-invalid, partner-unknown ...
    detail     text        NOT NULL,
    remote     text                                    -- the caller's address
);

-- What the dev-mode message kind "dev.noted" applies: one row per message, in the order
-- applied. Only dev deployments register that kind; the table stays empty elsewhere.
CREATE TABLE federation_dev_notes (
    id         bigserial   PRIMARY KEY,
    partner    text        NOT NULL,
    message_id uuid        NOT NULL,
    handoff    uuid        NOT NULL,
    seq        integer     NOT NULL,
    payload    bytea       NOT NULL,
    applied_at timestamptz NOT NULL,
    UNIQUE (partner, message_id)
);
