-- ADD_TEKUN: one row per assistance record behind a flag; flags: one per hukou household not on the register.
-- A person with current 特困供养 support not on the register. Exempt: a serving blocking cadre as in ADD_DIBAO.
SELECT t.*
FROM int_tekun_people AS t
WHERE NOT EXISTS (SELECT 1 FROM int_blocked_households AS b WHERE b.hukou_household_id = t.hukou_household_id)
