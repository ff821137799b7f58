-- One row per village of the register: register households and persons (valid numbers), unexited ones, the
-- living hukou population (status 正常, not dead at as_of) and poverty incidence (unexited persons / hukou
-- population, none without a population), the families to add (hukou households with an add flag).
-- Reads: poverty_register, hukou, int_deaths, flags.
WITH register AS (
    SELECT village_code,
           count(DISTINCT household_id) AS register_households,
           count(DISTINCT id_number) AS register_persons,
           count(DISTINCT CASE WHEN unexited THEN household_id END) AS unexited_households,
           count(DISTINCT CASE WHEN unexited THEN id_number END) AS unexited_persons
    FROM poverty_register
    WHERE id_number_valid AND village_code IS NOT NULL
    GROUP BY village_code
),
population AS (
    SELECT address_code AS village_code, count(DISTINCT id_number) AS hukou_persons
    FROM hukou AS h
    WHERE person_status = '正常' AND NOT EXISTS (SELECT 1 FROM int_deaths AS d WHERE d.id_number = h.id_number)
    GROUP BY address_code
),
additions AS (
    SELECT village_code, count(DISTINCT hukou_household_id) AS add_families
    FROM flags
    WHERE direction = 'add'
    GROUP BY village_code
)
SELECT r.village_code, r.register_households, r.register_persons, r.unexited_households, r.unexited_persons,
       coalesce(p.hukou_persons, 0) AS hukou_persons,
       round_even(r.unexited_persons / CASE WHEN p.hukou_persons > 0 THEN CAST(p.hukou_persons AS DOUBLE) END, 4)
           AS poverty_incidence,
       coalesce(a.add_families, 0) AS add_families,
       substr(r.village_code, 1, 9) AS township_code
FROM register AS r
LEFT JOIN population AS p ON p.village_code = r.village_code
LEFT JOIN additions AS a ON a.village_code = r.village_code
