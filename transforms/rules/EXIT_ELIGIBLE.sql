-- EXIT_ELIGIBLE: one row per household (with its head's latest appraisal); flags: one per register household.
-- An unexited household meeting every exit standard: income above the income line of as_of, every member
-- insured, no dropout (exempt reasons included) or unenrolled child, no 大病 not cured, safe water and
-- electricity not 否, the head's latest appraisal A/B or C/D renovated. A household with a member whose number
-- is invalid cannot prove them, nor can one whose head has no appraisal on file.
-- Policy: income_line, safe_housing_grades, unsafe_housing_grades.
WITH blocked AS (
    SELECT household_id FROM int_uninsured_members
    UNION ALL SELECT household_id FROM int_unenrolled_members
    UNION ALL SELECT household_id FROM int_member_dropouts
    UNION ALL SELECT household_id FROM int_member_illness WHERE serious
),
safe AS (
    SELECT a.* FROM int_latest_appraisals AS a
    WHERE a.grade IN (SELECT value FROM policy__safe_housing_grades)
       OR (a.grade IN (SELECT value FROM policy__unsafe_housing_grades) AND a.renovation = '已改造')
)
SELECT h.household_id, h.income, h.safe_water, h.electricity, p.income_line,
       a.head_id_number, a.grade, a.appraised, a.renovation, a._file, a._row, a._ord
FROM int_register_households AS h
CROSS JOIN policy AS p
JOIN safe AS a ON a.head_id_number = h.head_id_number
WHERE h.unexited AND h.income > p.income_line AND h.invalid_ids = 0 AND h.living > 0
  AND h.household_id NOT IN (SELECT household_id FROM blocked WHERE household_id IS NOT NULL)
  AND h.safe_water IS DISTINCT FROM '否' AND h.electricity IS DISTINCT FROM '否'
