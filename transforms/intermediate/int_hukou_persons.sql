-- One row per identity number in hukou: its first record.
-- Reads: hukou.
SELECT id_number, name, name_norm, hukou_household_id, address_code, person_status, _file, _row, _ord
FROM (SELECT h.*, row_number() OVER (PARTITION BY id_number ORDER BY _ord) AS n FROM hukou AS h) AS ranked
WHERE n = 1
