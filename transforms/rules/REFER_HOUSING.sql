-- REFER_HOUSING: one row per appraisal behind a flag; flags: one per register household.
-- A C/D house as in REVERT_HOUSING in an unexited household, or in an exited one above referral_income.
SELECT a.*
FROM int_unsafe_houses AS a
JOIN int_register_households AS h ON h.household_id = a.household_id
WHERE h.unexited OR coalesce(h.income > (SELECT referral_income FROM policy), FALSE)
