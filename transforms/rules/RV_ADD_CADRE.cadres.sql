-- RV_ADD_CADRE, its cadres: one row per serving blocking cadre in a hukou household RV_ADD_CADRE flags.
SELECT b.id_number, b.name, b.name_norm, b.position, b.term_status, b.hukou_household_id, b._file, b._row, b._ord
FROM int_blocked_households AS b
WHERE b.hukou_household_id IN (SELECT hukou_household_id FROM int_dibao_families)
   OR b.hukou_household_id IN (SELECT hukou_household_id FROM int_tekun_people)
