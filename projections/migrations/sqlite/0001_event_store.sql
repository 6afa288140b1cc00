-- The cqrs-es events table (sqlite-es inserts its seven columns), plus recorded_at.
CREATE TABLE events
(
    aggregate_type text    NOT NULL,
    aggregate_id   text    NOT NULL,
    sequence       integer NOT NULL CHECK (sequence >= 1),
    event_type     text    NOT NULL,
    event_version  text    NOT NULL,
    payload        text    NOT NULL,
    metadata       text    NOT NULL,
    recorded_at    text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

-- Commit order. SQLite has one writer at a time, so an AUTOINCREMENT id assigned by a
-- trigger inside the writing transaction follows commit order. (The rowid of `events`
-- would too, but VACUUM may renumber it; an INTEGER PRIMARY KEY is stable.)
CREATE TABLE event_order
(
    id             integer PRIMARY KEY AUTOINCREMENT,
    aggregate_type text    NOT NULL,
    aggregate_id   text    NOT NULL,
    sequence       integer NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE TRIGGER events_order AFTER INSERT ON events
BEGIN
    INSERT INTO event_order (aggregate_type, aggregate_id, sequence)
    VALUES (NEW.aggregate_type, NEW.aggregate_id, NEW.sequence);
END;

-- Append-only, enforced by the database.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
END;
CREATE TRIGGER event_order_no_update BEFORE UPDATE ON event_order
BEGIN
    SELECT RAISE(ABORT, 'event_order is append-only: UPDATE is not allowed');
END;
CREATE TRIGGER event_order_no_delete BEFORE DELETE ON event_order
BEGIN
    SELECT RAISE(ABORT, 'event_order is append-only: DELETE is not allowed');
END;

-- The global log: gap-free positions in commit order, hash-chained.
CREATE TABLE event_log
(
    position       integer PRIMARY KEY,
    aggregate_type text    NOT NULL,
    aggregate_id   text    NOT NULL,
    sequence       integer NOT NULL,
    event_type     text    NOT NULL,
    recorded_at    text    NOT NULL,
    event_hash     text    NOT NULL,
    chain_hash     text    NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE TRIGGER event_log_no_update BEFORE UPDATE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'event_log is append-only: UPDATE is not allowed');
END;
CREATE TRIGGER event_log_no_delete BEFORE DELETE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'event_log is append-only: DELETE is not allowed');
END;

-- Where the sequencer stands: the last event_order id copied into the log.
CREATE TABLE sequencer_state
(
    id          integer PRIMARY KEY CHECK (id = 1),
    last_order  integer NOT NULL,
    position    integer NOT NULL,
    chain_head  text    NOT NULL,
    updated_at  text    NOT NULL
) STRICT;
INSERT INTO sequencer_state (id, last_order, position, chain_head, updated_at)
VALUES (1, 0, 0, '', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- One checkpoint per read model.
CREATE TABLE projection_checkpoint
(
    name            text    PRIMARY KEY,
    position        integer NOT NULL,
    updated_at      text    NOT NULL,
    failed_position integer,
    last_error      text
) STRICT;
