-- One row per living member of compulsory-education age and latest student record of 辍学, with whether the
-- reason is exempt (因病/因残/因智).
-- Reads: int_latest_students, int_register_members; policy: compulsory_age_min, compulsory_age_max,
-- exempt_dropout_reasons.
SELECT s.*, m.household_id, m.name AS member_name, m.name_norm AS member_name_norm, m.age,
       coalesce(s.dropout_reason IN (SELECT value FROM policy__exempt_dropout_reasons), FALSE) AS exempt_reason
FROM int_latest_students AS s
JOIN int_register_members AS m ON m.id_number = s.id_number AND m.living
CROSS JOIN policy AS p
WHERE s.enrollment_status = '辍学' AND m.age BETWEEN p.compulsory_age_min AND p.compulsory_age_max
