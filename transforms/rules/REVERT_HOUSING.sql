-- REVERT_HOUSING: one row per appraisal behind a flag; flags: one per register household.
-- An exited household whose head's latest appraisal is C/D and not renovated, its income at most
-- referral_income (above it: REFER_HOUSING).
SELECT a.*
FROM int_unsafe_houses AS a
JOIN int_register_households AS h ON h.household_id = a.household_id
WHERE NOT h.unexited AND NOT coalesce(h.income > (SELECT referral_income FROM policy), FALSE)
