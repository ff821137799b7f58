-- One row per village and direction with a flag: the share of the village's register households flagged so.
-- Reads: mart_village_indicators, flags.
SELECT v.village_code, f.direction,
       round_even(count(DISTINCT f.household_id) / CAST(v.register_households AS DOUBLE), 4) AS share
FROM flags AS f
JOIN mart_village_indicators AS v ON v.village_code = f.village_code
WHERE f.household_id <> '' AND f.direction <> 'add'
GROUP BY v.village_code, f.direction, v.register_households
