-- Case numbers: per mediation group and year, from 1 without gaps. The sequencer takes
-- them: when it copies a case's CaseOpened into the global log (one writer, commit order),
-- a trigger numbers the case in that same transaction. So numbers follow the log, two
-- instances never take one twice, an opening that was refused or rolled back takes none,
-- and opening cases never waits on a counter (a counter row in the appending transaction
-- made every opening of a group wait for the one before it to commit). The year is the
-- local year the command service puts in the opening's metadata (`case_year`). The
-- number's text (e.g. 西关北街调〔2026〕12号) is formatted when shown, from the group's name.
CREATE TABLE case_numbers
(
    case_id  text    PRIMARY KEY,
    group_id text    NOT NULL,
    year     integer NOT NULL,
    n        integer NOT NULL,
    UNIQUE (group_id, year, n)
) STRICT;

CREATE TRIGGER event_log_case_number AFTER INSERT ON event_log
    WHEN NEW.aggregate_type = 'Case' AND NEW.event_type = 'CaseOpened'
        AND NOT EXISTS (SELECT 1 FROM case_numbers WHERE case_id = NEW.aggregate_id)
BEGIN
    INSERT INTO case_numbers (case_id, group_id, year, n)
    SELECT o.id, o.grp, o.year,
           COALESCE((SELECT MAX(c.n) FROM case_numbers c WHERE c.group_id = o.grp AND c.year = o.year), 0) + 1
    FROM (SELECT e.aggregate_id AS id,
                 json_extract(e.payload, '$.group') AS grp,
                 COALESCE(CAST(json_extract(e.metadata, '$.case_year') AS integer),
                          CAST(strftime('%Y', e.recorded_at, '+8 hours') AS integer)) AS year
          FROM events e
          WHERE e.aggregate_type = NEW.aggregate_type
            AND e.aggregate_id = NEW.aggregate_id
            AND e.sequence = NEW.sequence) AS o;
END;

CREATE TRIGGER case_numbers_no_update BEFORE UPDATE ON case_numbers
BEGIN
    SELECT RAISE(ABORT, 'case numbers are never changed');
END;

-- Cases already in the log are numbered in log order, by the Beijing-time year they were
-- recorded in; the others are numbered when the sequencer logs them.
INSERT INTO case_numbers (case_id, group_id, year, n)
SELECT id, grp, year, ROW_NUMBER() OVER (PARTITION BY grp, year ORDER BY position)
FROM (SELECT e.aggregate_id                                              AS id,
             json_extract(e.payload, '$.group')                          AS grp,
             CAST(strftime('%Y', e.recorded_at, '+8 hours') AS integer)  AS year,
             l.position                                                  AS position
      FROM event_log l
               JOIN events e ON e.aggregate_type = l.aggregate_type AND
                                e.aggregate_id = l.aggregate_id AND e.sequence = l.sequence
      WHERE l.aggregate_type = 'Case'
        AND l.event_type = 'CaseOpened') AS opened;
