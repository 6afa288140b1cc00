-- People who sign in. A member or leader account is linked to a member of a mediation
-- group; what it may do is read from the group's current state at each request, so the
-- role stored here is only 'member' for them (a leader is whoever the group's events
-- say). Passwords are argon2id hashes (PHC strings); the phone and the second factor's
-- secret are sealed with the account's data key (data_keys kind 'account').
CREATE TABLE accounts
(
    id                text PRIMARY KEY,
    login             text NOT NULL UNIQUE,
    display_name      text NOT NULL,
    organisation      text NOT NULL,
    role              text NOT NULL,
    kind              text NOT NULL DEFAULT 'person',
    group_id          text,
    member_id         text,
    phone_sealed      text,
    password_hash     text,
    must_change       bigint NOT NULL DEFAULT 0,
    totp_sealed       text,
    totp_enabled      bigint NOT NULL DEFAULT 0,
    failed_count      bigint NOT NULL DEFAULT 0,
    locked_until      text,
    disabled_at       text,
    created_at        text NOT NULL,
    last_sign_in_at   text,
    last_sign_in_from text
);

CREATE UNIQUE INDEX accounts_member ON accounts (group_id, member_id) WHERE member_id IS NOT NULL;

-- A token belongs to an account (tokens issued before accounts existed have none) and may
-- expire. A member's or leader's token from before accounts that names a member of its
-- group is tied to that member (member_id), so that it stops when the member leaves.
ALTER TABLE tokens ADD COLUMN account_id text;
ALTER TABLE tokens ADD COLUMN member_id text;
ALTER TABLE tokens ADD COLUMN expires_at text;
CREATE INDEX tokens_account ON tokens (account_id);

-- A browser session belongs to an account (or, as before, to a token); a kiosk's session
-- is not ended by the 12-hour rule.
ALTER TABLE web_sessions ADD COLUMN account_id text;
ALTER TABLE web_sessions ADD COLUMN kiosk bigint NOT NULL DEFAULT 0;
ALTER TABLE web_sessions ADD COLUMN address text;
CREATE INDEX web_sessions_account ON web_sessions (account_id);

-- Sign-ins, sign-outs, failures, lockouts, password changes and resets are logged in the
-- access log, with the client's address.
ALTER TABLE access_log ADD COLUMN address text;
CREATE INDEX access_log_actor ON access_log (actor_id, id);
