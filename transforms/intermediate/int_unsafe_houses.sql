-- One row per register household whose head's latest appraisal is unsafe (C/D) and not renovated.
-- Reads: int_latest_appraisals, int_register_households; policy: unsafe_housing_grades.
SELECT a.*, h.household_id
FROM int_latest_appraisals AS a
JOIN int_register_households AS h ON h.head_id_number = a.head_id_number
WHERE a.grade IN (SELECT value FROM policy__unsafe_housing_grades) AND a.renovation IS DISTINCT FROM '已改造'
