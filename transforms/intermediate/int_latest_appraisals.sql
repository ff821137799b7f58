-- One row per household head: the appraisal with the latest date (one without a date counts as oldest).
-- Reads: housing_safety.
SELECT * FROM (
    SELECT a.*, row_number() OVER (PARTITION BY head_id_number ORDER BY appraised DESC NULLS LAST, _row DESC, _ord DESC) AS n
    FROM housing_safety AS a
) AS ranked
WHERE n = 1
