-- The event store: stored events with a gapless global notification id and a
-- per-aggregate hash chain, tracking positions, and snapshots.
CREATE TABLE stored_events (
    notification_id    bigint      PRIMARY KEY,
    originator_id      uuid        NOT NULL,
    originator_version bigint      NOT NULL,
    topic              text        NOT NULL,
    state              bytea       NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    hash               bytea       NOT NULL,
    CONSTRAINT stored_events_version_unique UNIQUE (originator_id, originator_version)
);

-- One row per consumer (or process application): the last notification id it has handled.
CREATE TABLE tracking (
    application_name text        PRIMARY KEY,
    notification_id  bigint      NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE snapshots (
    originator_id      uuid   NOT NULL,
    originator_version bigint NOT NULL,
    topic              text   NOT NULL,
    state              bytea  NOT NULL,
    PRIMARY KEY (originator_id, originator_version)
);
