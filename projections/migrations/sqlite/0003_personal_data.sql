-- Data keys (one per case, per party, and one for search indexes), each wrapped under the
-- master key, which is never stored here. Erasing a key makes what it sealed unreadable.
CREATE TABLE data_keys
(
    kind       text NOT NULL,
    id         text NOT NULL,
    kek_id     text NOT NULL,
    wrapped    text NOT NULL,
    created_at text NOT NULL,
    erased_at  text,
    PRIMARY KEY (kind, id)
) STRICT;

-- The party registry: the personal data itself, sealed with the party's key; blind
-- indexes (keyed hashes) for exact search by name or phone.
CREATE TABLE parties
(
    party_id     text PRIMARY KEY,
    kind         text NOT NULL,
    community    text NOT NULL,
    sealed       text NOT NULL,
    name_index   text,
    phone_index  text,
    created_at   text NOT NULL,
    updated_at   text NOT NULL,
    erased_at    text
) STRICT;
CREATE INDEX parties_name ON parties (name_index);
CREATE INDEX parties_phone ON parties (phone_index);
CREATE INDEX parties_community ON parties (community);

-- Who saw or changed whose personal data, when and why. Append-only.
CREATE TABLE access_log
(
    id           integer PRIMARY KEY AUTOINCREMENT,
    at           text NOT NULL,
    actor_id     text NOT NULL,
    actor_name   text NOT NULL,
    role         text NOT NULL,
    party_id     text,
    case_id      text,
    action       text NOT NULL,
    reason       text,
    request_id   text NOT NULL
) STRICT;
CREATE INDEX access_log_party ON access_log (party_id, id);
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only: UPDATE is not allowed');
END;
CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only: DELETE is not allowed');
END;
