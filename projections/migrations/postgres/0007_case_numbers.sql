-- Case numbers: per mediation group and year, from 1 without gaps, assigned by the
-- database inside the transaction that stores the case's CaseOpened event (so a failed or
-- refused opening takes no number). Concurrent openings for one group and year queue on
-- that group's counter row until the first commits: two instances never take the same
-- number, and a rolled-back opening gives its number back. The year is the local year the
-- command service puts in the event's metadata (`case_year`). The number's text (e.g.
-- 西关北街调〔2026〕12号) is formatted when shown, from the group's name.
CREATE TABLE case_numbers
(
    case_id  text    PRIMARY KEY,
    group_id text    NOT NULL,
    year     integer NOT NULL,
    n        integer NOT NULL,
    UNIQUE (group_id, year, n)
);

CREATE TABLE case_number_counters
(
    group_id text    NOT NULL,
    year     integer NOT NULL,
    last     integer NOT NULL,
    PRIMARY KEY (group_id, year)
);

CREATE FUNCTION tiaojie_case_number() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    g text    := NEW.payload ->> 'group';
    y integer := COALESCE((NEW.metadata ->> 'case_year')::integer,
                          EXTRACT(YEAR FROM (now() AT TIME ZONE 'UTC') + interval '8 hours')::integer);
    k integer;
BEGIN
    INSERT INTO case_number_counters (group_id, year, last)
    VALUES (g, y, 1)
    ON CONFLICT (group_id, year) DO UPDATE SET last = case_number_counters.last + 1
    RETURNING last INTO k;
    INSERT INTO case_numbers (case_id, group_id, year, n) VALUES (NEW.aggregate_id, g, y, k);
    RETURN NEW;
END
$$;

CREATE TRIGGER events_case_number
    AFTER INSERT
    ON events
    FOR EACH ROW
    WHEN (NEW.aggregate_type = 'Case' AND NEW.event_type = 'CaseOpened')
EXECUTE FUNCTION tiaojie_case_number();

CREATE TRIGGER case_numbers_append_only BEFORE UPDATE OR DELETE ON case_numbers
    FOR EACH ROW EXECUTE FUNCTION tiaojie_reject_change();

-- Cases opened before numbers existed are numbered in the order they were stored, by the
-- Beijing-time year they were recorded in.
INSERT INTO case_numbers (case_id, group_id, year, n)
SELECT aggregate_id, grp, year, ROW_NUMBER() OVER (PARTITION BY grp, year ORDER BY tx_id, id)
FROM (SELECT aggregate_id,
             payload ->> 'group'                                            AS grp,
             EXTRACT(YEAR FROM (recorded_at AT TIME ZONE 'UTC') + interval '8 hours')::integer AS year,
             tx_id,
             id
      FROM events
      WHERE aggregate_type = 'Case'
        AND event_type = 'CaseOpened') AS opened;
INSERT INTO case_number_counters (group_id, year, last)
SELECT group_id, year, MAX(n)
FROM case_numbers
GROUP BY group_id, year;
