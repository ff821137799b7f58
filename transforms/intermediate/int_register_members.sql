-- One row per register row: the member, its hukou record, whether it is dead at as_of, its age (valid numbers
-- only: a member whose number is invalid is never matched, neither dead nor living).
-- Reads: poverty_register, int_hukou_persons, int_deaths; policy: as_of.
SELECT r.household_id, r.id_number, r.valid AS id_number_valid, r.id_number_problem, r.name, r.name_norm, r.relation,
       r.village_code, r.status, r.unexited, r.income_per_capita, r.identified_year, r.safe_water, r.electricity,
       r._file, r._row, r._ord,
       h.name AS hukou_name, h.name_norm AS hukou_name_norm, h.hukou_household_id, h.address_code,
       h._file AS hukou_file, h._row AS hukou_row, h.hukou_household_id IS NOT NULL AS in_hukou,
       d.death_source, d.death_file, d.death_row, d.death_date,
       r.valid AND d.id_number IS NOT NULL AS dead,
       r.valid AND d.id_number IS NULL AS living,
       CASE WHEN r.valid THEN
           year(p.as_of) - year(r.born)
           - CASE WHEN month(r.born) < month(p.as_of)
                       OR (month(r.born) = month(p.as_of) AND day(r.born) <= day(p.as_of)) THEN 0 ELSE 1 END
       END AS age
FROM (
    SELECT g.*, coalesce(g.id_number_valid, FALSE) AS valid,
           CASE WHEN g.id_number_valid THEN strptime(substr(g.id_number, 7, 8), '%Y%m%d') END AS born
    FROM poverty_register AS g
) AS r
CROSS JOIN policy AS p
LEFT JOIN int_hukou_persons AS h ON h.id_number = r.id_number
LEFT JOIN int_deaths AS d ON d.id_number = r.id_number
