-- Bearer tokens: only a hash of each token is stored.
CREATE TABLE tokens
(
    id           text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL,
    group_id     text,
    organisation text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    created_at   text NOT NULL,
    revoked_at   text
);

-- Answers to commands sent with an Idempotency-Key, so a repeat returns the first answer.
CREATE TABLE idempotency
(
    actor_id     text   NOT NULL,
    key          text   NOT NULL,
    request_hash text   NOT NULL,
    status       bigint NOT NULL,
    body         text   NOT NULL,
    etag         text,
    created_at   text   NOT NULL,
    PRIMARY KEY (actor_id, key)
);

-- Finds the events a keyed command wrote, should its answer not have been stored.
CREATE INDEX events_idempotency_key ON events ((metadata ->> 'idempotency_key'))
    WHERE (metadata ->> 'idempotency_key') IS NOT NULL;
