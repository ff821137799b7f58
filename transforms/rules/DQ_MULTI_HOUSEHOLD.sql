-- DQ_MULTI_HOUSEHOLD: one row per member; flags: one per (register household, person).
-- The same number in more than one register household: one flag in each.
SELECT m.*
FROM int_register_members AS m
WHERE m.living AND m.id_number IN (
    SELECT id_number FROM int_register_members WHERE living GROUP BY id_number HAVING count(DISTINCT household_id) > 1)
