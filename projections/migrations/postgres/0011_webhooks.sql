-- Webhooks: notifications for other platforms, kept in an outbox until delivered, so that
-- a restart or a receiver that is down loses none. Each row is one notification for one
-- endpoint; its id is derived from what it reports (the log position, or the case and the
-- deadline it passed), so that enqueueing twice stores it once. The cursor is how far the
-- audit trail has been read for notifications.
CREATE TABLE webhook_outbox
(
    delivery_id     text PRIMARY KEY,
    endpoint        text NOT NULL,
    event           text NOT NULL,
    payload         text NOT NULL,
    created_at      text NOT NULL,
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_at text NOT NULL,
    delivered_at    text,
    given_up_at     text,
    last_error      text
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at);
CREATE TABLE webhook_cursor
(
    id       bigint PRIMARY KEY,
    position bigint NOT NULL
);
-- The daily digest by e-mail: which group's digest went to whom on which (local) day, taken
-- before the mail is sent so that a restart or a second instance sends it once.
CREATE TABLE digest_sent
(
    group_id text NOT NULL,
    email    text NOT NULL,
    day      text NOT NULL,
    sent_at  text NOT NULL,
    PRIMARY KEY (group_id, email, day)
);
