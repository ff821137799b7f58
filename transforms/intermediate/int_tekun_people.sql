-- One row per current 特困供养 record of a person not on the register, mapped to the living hukou person.
-- Reads: int_current_assistance, int_register_members, int_persons_living.
SELECT a.*, p.hukou_household_id, p.address_code AS village_code
FROM int_current_assistance AS a
JOIN int_persons_living AS p ON p.id_number = a.id_number
WHERE a.assistance_type = '特困供养'
  AND NOT EXISTS (SELECT 1 FROM int_register_members AS m WHERE m.id_number_valid AND m.id_number = a.id_number)
