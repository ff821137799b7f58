-- One row per living member of compulsory-education age with no student record at all (送教上门 is a record).
-- Reads: int_register_members, students; policy: compulsory_age_min, compulsory_age_max.
SELECT m.*
FROM int_register_members AS m
CROSS JOIN policy AS p
WHERE m.living AND m.age BETWEEN p.compulsory_age_min AND p.compulsory_age_max
  AND NOT EXISTS (SELECT 1 FROM students AS s WHERE s.id_number = m.id_number)
