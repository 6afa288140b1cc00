-- Group commit: the appends of many commands in one transaction, one round trip.
--
-- The arrays carry every event of the batch (with the index of the command it belongs to)
-- and the data keys new cases need. Each command is written in a block of its own (a
-- subtransaction): its new data key, then its events. When either already exists (another
-- writer won the race for that aggregate, or its key), only that command is rolled back and
-- its index is answered, so that the caller decides it again on fresh state; the other
-- commands of the batch commit together. Keep batches under 64 commands, the number of
-- subtransactions PostgreSQL tracks without overflowing its snapshots.
CREATE FUNCTION tiaojie_append(
    ev_cmd int[], ev_type text[], ev_id text[], ev_seq bigint[], ev_event_type text[],
    ev_version text[], ev_payload text[], ev_metadata text[],
    key_cmd int[], key_kind text[], key_id text[], key_kek text[], key_wrapped text[],
    key_created text[])
    RETURNS int[]
    LANGUAGE plpgsql AS
$$
DECLARE
    conflicted int[] := '{}';
    c          int;
    wanted     int;
    stored     int;
BEGIN
    FOR c IN SELECT DISTINCT x FROM unnest(ev_cmd) AS x ORDER BY x
        LOOP
            BEGIN
                SELECT count(*) INTO wanted FROM unnest(key_cmd) AS k WHERE k = c;
                IF wanted > 0 THEN
                    INSERT INTO data_keys (kind, id, kek_id, wrapped, created_at)
                    SELECT k.kind, k.id, k.kek, k.wrapped, k.created
                      FROM unnest(key_cmd, key_kind, key_id, key_kek, key_wrapped, key_created)
                               AS k(cmd, kind, id, kek, wrapped, created)
                     WHERE k.cmd = c
                    ON CONFLICT (kind, id) DO NOTHING;
                    GET DIAGNOSTICS stored = ROW_COUNT;
                    IF stored < wanted THEN
                        RAISE unique_violation USING MESSAGE = 'the data key exists already';
                    END IF;
                END IF;
                INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                    event_version, payload, metadata)
                SELECT e.t, e.id, e.seq, e.et, e.v, e.p::json, e.m::json
                  FROM unnest(ev_cmd, ev_type, ev_id, ev_seq, ev_event_type, ev_version,
                              ev_payload, ev_metadata) WITH ORDINALITY
                           AS e(cmd, t, id, seq, et, v, p, m, n)
                 WHERE e.cmd = c
                 ORDER BY e.n;
            EXCEPTION
                WHEN unique_violation THEN
                    conflicted := conflicted || c;
            END;
        END LOOP;
    RETURN conflicted;
END
$$;
