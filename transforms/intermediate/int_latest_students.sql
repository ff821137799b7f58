-- One row per person: the student record with the latest status date (a record without a date counts as oldest).
-- Reads: students.
SELECT * FROM (
    SELECT s.*, row_number() OVER (PARTITION BY id_number ORDER BY status_date DESC NULLS LAST, _row DESC, _ord DESC) AS n
    FROM students AS s
) AS ranked
WHERE n = 1
