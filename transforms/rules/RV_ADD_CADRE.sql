-- RV_ADD_CADRE: one row per assistance record behind a flag; flags: one per hukou household.
-- A family that would be added (ADD_DIBAO or ADD_TEKUN) but whose hukou household has a serving blocking cadre;
-- the cadres are the second part of its evidence (RV_ADD_CADRE.cadres.sql).
SELECT f.* FROM (
    SELECT id_number, name, name_norm, assistance_household_id, assistance_type, dibao_class, labor_capacity,
           income_per_capita, assistance_status, start_date, hukou_household_id, village_code, _file, _row, _ord
    FROM int_dibao_families
    UNION ALL
    SELECT id_number, name, name_norm, assistance_household_id, assistance_type, dibao_class, labor_capacity,
           income_per_capita, assistance_status, start_date, hukou_household_id, village_code, _file, _row, _ord
    FROM int_tekun_people
) AS f
WHERE f.hukou_household_id IN (SELECT hukou_household_id FROM int_blocked_households)
