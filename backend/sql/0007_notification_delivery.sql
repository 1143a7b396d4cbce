-- Notifications, delivery side: where people can be reached, what they asked for, and
-- the dispatcher's own bookkeeping on the outbox.

-- A dispatcher claims a row by writing a fresh claim id and pushing next_attempt_at out
-- by its lease (committed at once, like the timers' lease). Recording the outcome names
-- the claim id, so a dispatcher that outlived its lease cannot overwrite the outcome of
-- the one that took the row over.
ALTER TABLE notification_outbox
    ADD COLUMN claim uuid,
    -- attempts counts every send ever; those since the last re-drive count towards the dead letter
    ADD COLUMN attempt_base integer NOT NULL DEFAULT 0,
    -- providers whose last send ended without a clear answer: asked before sending again
    ADD COLUMN unsettled text[] NOT NULL DEFAULT '{}',
    ADD COLUMN unsettled_since timestamptz,   -- when the first of those sends went out
    ADD COLUMN deferred text;                 -- why the row waits without an attempt: quiet hours, rate limit

-- Push devices. FCM addresses an app instance by its Firebase installation id (firebase-admin
-- 7.7 deprecates Message.token for Message.fid). One installation belongs to one account at a
-- time: signing in as somebody else on the same phone moves it.
CREATE TABLE push_devices (
    installation_id text        PRIMARY KEY,
    subject         text        NOT NULL,
    role            text        NOT NULL,     -- citizen | officer | clerk ...
    department      text,                     -- officers: whose task notices the device gets
    platform        text        NOT NULL,
    registered_at   timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL
);
CREATE INDEX push_devices_subject ON push_devices (subject);
CREATE INDEX push_devices_department ON push_devices (department) WHERE department IS NOT NULL;

-- WeChat subscription grants: each "accept" of wx.requestSubscribeMessage lets the mini-program
-- send one message of that template to that user. A grant is reserved for one notification
-- (reserved_by), then spent: sent, or refused by WeChat (43101, the user withdrew it). A
-- reservation whose notification moved on to another channel is released for the next one.
CREATE TABLE wechat_grants (
    id          bigserial   PRIMARY KEY,
    subject     text        NOT NULL,
    openid      text        NOT NULL,
    template_id text        NOT NULL,
    granted_at  timestamptz NOT NULL,
    reserved_by text,
    spent_at    timestamptz,
    spent_how   text        CHECK (spent_how IN ('sent', 'refused'))
);
CREATE INDEX wechat_grants_open ON wechat_grants (subject, template_id, id) WHERE spent_at IS NULL;

-- Per account, per purpose and channel: whether the account wants it. No row: wanted.
-- The in-app inbox has no row: it always holds every notification.
CREATE TABLE notification_preferences (
    subject    text        NOT NULL,
    purpose    text        NOT NULL,
    channel    text        NOT NULL CHECK (channel IN ('wechat', 'push', 'sms')),
    enabled    boolean     NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (subject, purpose, channel)
);

-- SMS sent per number, for the per-phone limits. The number is kept only as a keyed digest.
CREATE TABLE sms_sends (
    phone_digest text        NOT NULL,
    sent_at      timestamptz NOT NULL,
    key          text        NOT NULL
);
CREATE INDEX sms_sends_phone ON sms_sends (phone_digest, sent_at);

-- Admin lists: dead letters, newest first, and any state by time.
CREATE INDEX notification_outbox_state ON notification_outbox (state, created_at DESC);
