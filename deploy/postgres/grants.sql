-- Run as tiaojie_owner after every `tiaojie migrate` (idempotent).
-- The application role: append-only on the record, read-write on derived state.

GRANT USAGE ON SCHEMA public TO tiaojie_app;

-- The record: read and append only. No UPDATE, DELETE, TRUNCATE; no ownership.
REVOKE ALL ON events, event_log FROM tiaojie_app;
GRANT SELECT, INSERT ON events, event_log TO tiaojie_app;
-- Case numbers are taken by a trigger on event_log, in the sequencer's transaction.
GRANT SELECT, INSERT ON case_numbers TO tiaojie_app;
GRANT SELECT, INSERT, UPDATE ON case_number_counters TO tiaojie_app;

-- Derived and operational state the service maintains.
GRANT SELECT, UPDATE ON sequencer_state TO tiaojie_app;
GRANT SELECT, INSERT, UPDATE ON projection_checkpoint TO tiaojie_app;
GRANT SELECT, INSERT, UPDATE ON case_status, community_heat, heat_obstructors, heat_obstructor_totals, audit_trail, daily_stats, case_parties, supervision_orders TO tiaojie_app;

-- Personal data: sealed records and their keys (erasure updates them); the access log is
-- append-only like the record.
GRANT SELECT, INSERT, UPDATE ON data_keys, parties TO tiaojie_app;
GRANT SELECT, INSERT ON access_log TO tiaojie_app;
-- A party's search terms are replaced when the party is corrected, deleted when erased.
GRANT SELECT, INSERT, DELETE ON party_terms TO tiaojie_app;
GRANT SELECT, INSERT, DELETE ON attachments TO tiaojie_app;
GRANT SELECT, INSERT, UPDATE ON tokens TO tiaojie_app;
-- Accounts change (passwords, locks, sign-in times) but are never deleted: disabled.
GRANT SELECT, INSERT, UPDATE ON accounts TO tiaojie_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency TO tiaojie_app;
GRANT SELECT ON _sqlx_migrations TO tiaojie_app;
-- Browser sessions of the web interface (signing out deletes them).
GRANT SELECT, INSERT, UPDATE, DELETE ON web_sessions TO tiaojie_app;
-- Readiness's write probe (one row per instance).
GRANT SELECT, INSERT, UPDATE ON write_probe TO tiaojie_app;
-- Webhooks' outbox and how far the audit trail was read for them.
GRANT SELECT, INSERT, UPDATE ON webhook_outbox, webhook_cursor TO tiaojie_app;
GRANT SELECT, INSERT, DELETE ON digest_sent TO tiaojie_app;
