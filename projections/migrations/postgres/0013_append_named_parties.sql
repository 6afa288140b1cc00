-- The registry check of the parties a command names, in the append's own transaction.
--
-- A command that names parties (a case opened with them, a party added) may only name
-- parties that are registered and not erased. That was one query per command before the
-- append, in a transaction of its own. Here the group commit checks them together with
-- the writing, in one round trip for the whole batch, and answers what the command's
-- warnings need of each party named (its incidents in all communities, and its sealed
-- record, opened only to name a repeat obstructor).
--
-- Arguments: those of tiaojie_append (0012), then the parties named, each with the index
-- of its command. Answers rows of (cmd, outcome, party, incidents, sealed):
--   'conflict'      the command's aggregate or key was written first by another writer
--                   (party is null); decide it again
--   'unregistered'  the command names a party that is not registered; nothing of it is
--   'erased'        … or one whose data was erased; nothing of it is written
--   'named'         the command was written, and names this party
-- A command that is not answered 'conflict', 'unregistered' or 'erased' was written.
--
-- tiaojie_append (0012) stays: an instance of the earlier release still calls it while a
-- rolling upgrade replaces it, which is also why its write steps are repeated here rather
-- than changed there.
CREATE FUNCTION tiaojie_append_named(
    ev_cmd int[], ev_type text[], ev_id text[], ev_seq bigint[], ev_event_type text[],
    ev_version text[], ev_payload text[], ev_metadata text[],
    key_cmd int[], key_kind text[], key_id text[], key_kek text[], key_wrapped text[],
    key_created text[], party_cmd int[], party_id text[])
    RETURNS TABLE (cmd int, outcome text, party text, incidents bigint, sealed text)
    LANGUAGE plpgsql AS
$$
DECLARE
    this       int;
    wanted     int;
    stored     int;
    -- The parties named, as the registry holds them, in the order the commands name them.
    n_cmd      int[];
    n_party    text[];
    n_problem  text[];
    n_incidents bigint[];
    n_sealed   text[];
    culprit    int;
BEGIN
    SELECT COALESCE(array_agg(q.c ORDER BY q.n), '{}'),
           COALESCE(array_agg(q.id ORDER BY q.n), '{}'),
           COALESCE(array_agg(CASE
                                  WHEN p.party_id IS NULL THEN 'unregistered'
                                  WHEN p.erased_at IS NOT NULL THEN 'erased'
                                  END ORDER BY q.n), '{}'),
           COALESCE(array_agg(COALESCE(t.incidents, 0) ORDER BY q.n), '{}'),
           COALESCE(array_agg(p.sealed ORDER BY q.n), '{}')
      INTO n_cmd, n_party, n_problem, n_incidents, n_sealed
      FROM unnest(party_cmd, party_id) WITH ORDINALITY AS q(c, id, n)
               LEFT JOIN parties p ON p.party_id = q.id
               LEFT JOIN heat_obstructor_totals t ON t.party_id = q.id;
    IF NOT EXISTS (SELECT 1 FROM unnest(n_problem) AS x(problem) WHERE x.problem IS NOT NULL) THEN
        BEGIN
            INSERT INTO data_keys (kind, id, kek_id, wrapped, created_at)
            SELECT * FROM unnest(key_kind, key_id, key_kek, key_wrapped, key_created);
            INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                event_version, payload, metadata)
            SELECT e.t, e.id, e.seq, e.et, e.v, e.p::json, e.m::json
              FROM unnest(ev_type, ev_id, ev_seq, ev_event_type, ev_version, ev_payload,
                          ev_metadata) WITH ORDINALITY AS e(t, id, seq, et, v, p, m, n)
             ORDER BY e.n;
            RETURN QUERY SELECT x.c, 'named'::text, x.id, x.i, x.s
                           FROM unnest(n_cmd, n_party, n_incidents, n_sealed) AS x(c, id, i, s);
            RETURN;
        EXCEPTION
            WHEN unique_violation THEN
                NULL; -- some command clashes: write them one by one
        END;
    END IF;
    FOR this IN SELECT DISTINCT x FROM unnest(ev_cmd) AS x ORDER BY x
        LOOP
            -- The first party the command names that it may not name, if any.
            SELECT min(x.n) INTO culprit
              FROM unnest(n_cmd, n_problem) WITH ORDINALITY AS x(c, problem, n)
             WHERE x.c = this AND x.problem IS NOT NULL;
            IF culprit IS NOT NULL THEN
                cmd := this;
                outcome := n_problem[culprit];
                party := n_party[culprit];
                incidents := NULL;
                sealed := NULL;
                RETURN NEXT;
                CONTINUE;
            END IF;
            BEGIN
                SELECT count(*) INTO wanted FROM unnest(key_cmd) AS k WHERE k = this;
                IF wanted > 0 THEN
                    INSERT INTO data_keys (kind, id, kek_id, wrapped, created_at)
                    SELECT k.kind, k.id, k.kek, k.wrapped, k.created
                      FROM unnest(key_cmd, key_kind, key_id, key_kek, key_wrapped, key_created)
                               AS k(cmd, kind, id, kek, wrapped, created)
                     WHERE k.cmd = this
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
                 WHERE e.cmd = this
                 ORDER BY e.n;
                RETURN QUERY SELECT x.c, 'named'::text, x.id, x.i, x.s
                               FROM unnest(n_cmd, n_party, n_incidents, n_sealed) AS x(c, id, i, s)
                              WHERE x.c = this;
            EXCEPTION
                WHEN unique_violation THEN
                    cmd := this;
                    outcome := 'conflict';
                    party := NULL;
                    incidents := NULL;
                    sealed := NULL;
                    RETURN NEXT;
            END;
        END LOOP;
END
$$;
