-- One row per living member without a 参保 record for the year of as_of.
-- Reads: int_register_members, medical_insurance; policy: as_of.
SELECT m.*, year(p.as_of) AS insured_year
FROM int_register_members AS m
CROSS JOIN policy AS p
WHERE m.living
  AND NOT EXISTS (SELECT 1 FROM medical_insurance AS i
                  WHERE i.id_number = m.id_number AND i.insured_status = '参保' AND i.insured_year = year(p.as_of))
