-- Notifications: the outbox the policy consumer fills and the dispatcher drains, every
-- delivery attempt, and what each citizen has read in the in-app inbox.
--
-- None of these is a blue/green read model. The dispatcher mutates the outbox, so a
-- rebuilt generation must find its rows already there (ON CONFLICT (key) DO NOTHING)
-- and never send again; reads are the citizens' own acts, which no rebuild may lose.
CREATE TABLE notification_outbox (
    key             text        PRIMARY KEY,       -- intents.intent_key: the same event gives the same key
    purpose         text        NOT NULL,
    recipient_kind  text        NOT NULL,          -- citizen | department
    recipient       text        NOT NULL,          -- account subject or department code
    recipient_role  text,                          -- departments only: handler | head
    case_id         uuid,
    variables       jsonb       NOT NULL,          -- display values, already masked
    urgent          boolean     NOT NULL,
    occurred_at     timestamptz NOT NULL,
    -- skipped: written for an event too old to be news (installing on an old log, a rebuild).
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead', 'skipped')),
    channel         text,                          -- the channel being tried, or that delivered
    tried_channels  text[]      NOT NULL DEFAULT '{}',
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The dispatcher's only question: which pending notifications are due?
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at) WHERE state = 'pending';

CREATE TABLE notification_attempts (
    key         text        NOT NULL REFERENCES notification_outbox (key),
    attempt     integer     NOT NULL,
    channel     text        NOT NULL,
    provider    text        NOT NULL,
    outcome     text        NOT NULL,              -- done | retry | fail_over | drop
    detail      text        NOT NULL DEFAULT '',
    provider_id text,
    at          timestamptz NOT NULL,
    PRIMARY KEY (key, attempt)
);

-- Inbox entries a citizen has read, by the entry's key; the inbox read model joins it.
CREATE TABLE inbox_reads (
    subject text        NOT NULL,
    key     text        NOT NULL,
    read_at timestamptz NOT NULL,
    PRIMARY KEY (subject, key)
);
