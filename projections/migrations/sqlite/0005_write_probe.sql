-- Readiness writes here: one row per service instance, rewritten by each probe, so that a
-- node on a full or read-only disk says it cannot take writes before a client finds out.
CREATE TABLE write_probe
(
    node text PRIMARY KEY,
    at   text NOT NULL
) STRICT;
