-- ADD_DIBAO: one row per assistance record behind a flag; flags: one per hukou household not on the register.
-- A first/second-class 低保 family unable to work, not on the register (int_dibao_families). Exempt: a member
-- able to work; a serving blocking cadre in the hukou household (RV_ADD_CADRE says why).
SELECT f.*
FROM int_dibao_families AS f
WHERE NOT EXISTS (SELECT 1 FROM int_blocked_households AS b WHERE b.hukou_household_id = f.hukou_household_id)
