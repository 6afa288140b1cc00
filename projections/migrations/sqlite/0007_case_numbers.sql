-- Case numbers: per mediation group and year, from 1 without gaps, assigned by the
-- database inside the transaction that stores the case's CaseOpened event (so a failed or
-- refused opening takes no number, and two writers never take the same one). The year is
-- the local year the command service puts in the event's metadata (`case_year`). The
-- number's text (e.g. 西关北街调〔2026〕12号) is formatted when shown, from the group's name.
CREATE TABLE case_numbers
(
    case_id  text    PRIMARY KEY,
    group_id text    NOT NULL,
    year     integer NOT NULL,
    n        integer NOT NULL,
    UNIQUE (group_id, year, n)
) STRICT;

-- SQLite has one writer at a time: the next number is the largest so far plus one.
CREATE TRIGGER events_case_number AFTER INSERT ON events
    WHEN NEW.aggregate_type = 'Case' AND NEW.event_type = 'CaseOpened'
BEGIN
    INSERT INTO case_numbers (case_id, group_id, year, n)
    SELECT NEW.aggregate_id,
           json_extract(NEW.payload, '$.group'),
           y.year,
           COALESCE((SELECT MAX(n) FROM case_numbers
                     WHERE group_id = json_extract(NEW.payload, '$.group') AND year = y.year), 0) + 1
    FROM (SELECT COALESCE(CAST(json_extract(NEW.metadata, '$.case_year') AS integer),
                          CAST(strftime('%Y', 'now', '+8 hours') AS integer)) AS year) AS y;
END;

CREATE TRIGGER case_numbers_no_update BEFORE UPDATE ON case_numbers
BEGIN
    SELECT RAISE(ABORT, 'case numbers are never changed');
END;

-- Cases opened before numbers existed are numbered in the order they were stored, by the
-- Beijing-time year they were recorded in.
INSERT INTO case_numbers (case_id, group_id, year, n)
SELECT aggregate_id, grp, year, ROW_NUMBER() OVER (PARTITION BY grp, year ORDER BY ord)
FROM (SELECT e.aggregate_id                                        AS aggregate_id,
             json_extract(e.payload, '$.group')                    AS grp,
             CAST(strftime('%Y', e.recorded_at, '+8 hours') AS integer) AS year,
             o.id                                                   AS ord
      FROM events e
               JOIN event_order o ON o.aggregate_type = e.aggregate_type AND
                                     o.aggregate_id = e.aggregate_id AND o.sequence = e.sequence
      WHERE e.aggregate_type = 'Case'
        AND e.event_type = 'CaseOpened') AS opened;
