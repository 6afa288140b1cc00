-- Two roles for a production database (run as a superuser once, before `tiaojie migrate`):
--   tiaojie_owner  owns the schema; `tiaojie migrate` and `tiaojie projections rebuild`
--                  run with it.
--   tiaojie_app    what `tiaojie serve` connects with: it may read and append events and
--                  the log, never UPDATE, DELETE or TRUNCATE them, and owns nothing.
-- Replace the passwords. Then, after `tiaojie migrate` has run as tiaojie_owner, run
-- grants.sql (also as tiaojie_owner) to give tiaojie_app its rights on the new tables.

CREATE ROLE tiaojie_owner LOGIN PASSWORD 'change-me-owner';
CREATE ROLE tiaojie_app LOGIN PASSWORD 'change-me-app';
CREATE DATABASE tiaojie OWNER tiaojie_owner;
\connect tiaojie
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO tiaojie_app;
GRANT ALL ON SCHEMA public TO tiaojie_owner;
