-- The cqrs-es events table (postgres-es inserts its seven columns), plus an insert-order id,
-- the writing transaction's id, and recorded_at. All three have defaults.
CREATE TABLE events
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL CHECK (sequence >= 1),
    event_type     text        NOT NULL,
    event_version  text        NOT NULL,
    payload        json        NOT NULL,
    metadata       json        NOT NULL,
    id             bigint GENERATED ALWAYS AS IDENTITY,
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
-- The sequencer reads in (tx_id, id) order behind the snapshot's xmin.
CREATE INDEX events_commit_order ON events (tx_id, id);

CREATE FUNCTION tiaojie_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION tiaojie_reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tiaojie_reject_change();

-- Wake the sequencers of every instance when events commit (delivered at commit,
-- collapsed to one per transaction).
CREATE FUNCTION tiaojie_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tiaojie_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tiaojie_notify_events();

-- The global log: gap-free positions in commit order, hash-chained.
CREATE TABLE event_log
(
    position       bigint PRIMARY KEY,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    event_type     text   NOT NULL,
    recorded_at    text   NOT NULL,
    event_hash     text   NOT NULL,
    chain_hash     text   NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);
CREATE TRIGGER event_log_append_only BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION tiaojie_reject_change();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION tiaojie_reject_change();

-- Where the sequencer stands: the last (tx_id, id) copied into the log.
CREATE TABLE sequencer_state
(
    id         integer PRIMARY KEY CHECK (id = 1),
    last_tx    bigint  NOT NULL,
    last_id    bigint  NOT NULL,
    position   bigint  NOT NULL,
    chain_head text    NOT NULL,
    updated_at text    NOT NULL
);
INSERT INTO sequencer_state (id, last_tx, last_id, position, chain_head, updated_at)
VALUES (1, 0, 0, 0, '', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'));

-- One checkpoint per read model.
CREATE TABLE projection_checkpoint
(
    name            text   PRIMARY KEY,
    position        bigint NOT NULL,
    updated_at      text   NOT NULL,
    failed_position bigint,
    last_error      text
);
