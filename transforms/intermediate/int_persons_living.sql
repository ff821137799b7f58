-- One row per hukou person not dead at as_of, with the hukou household and address.
-- Reads: int_hukou_persons, int_deaths.
SELECT h.id_number, h.name, h.name_norm, h.hukou_household_id, h.address_code, h._file, h._row, h._ord
FROM int_hukou_persons AS h
WHERE NOT EXISTS (SELECT 1 FROM int_deaths AS d WHERE d.id_number = h.id_number)
