-- Browser sessions of the web interface. The cookie carries a random id; only its SHA-256
-- is stored, with the hash of the token the person signed in with (revoking the token ends
-- its sessions) and the session's CSRF secret.
CREATE TABLE web_sessions
(
    id_hash      text PRIMARY KEY,
    token_hash   text NOT NULL,
    csrf         text NOT NULL,
    created_at   text NOT NULL,
    last_seen_at text NOT NULL,
    expires_at   text NOT NULL
);

CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
