-- Deadlines as rows: consumers schedule them from events, the timer worker fires
-- them as commands. The key is the idempotency key of both the row and the command.
CREATE TABLE due_timers (
    key        text        PRIMARY KEY,
    kind       text        NOT NULL,
    due_at     timestamptz NOT NULL,
    payload    jsonb       NOT NULL DEFAULT '{}',
    attempts   integer     NOT NULL DEFAULT 0,
    last_error text,
    fired_at   timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The worker's only question: which unfired timers are due?
CREATE INDEX due_timers_pending ON due_timers (due_at) WHERE fired_at IS NULL;
