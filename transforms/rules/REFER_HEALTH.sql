-- REFER_HEALTH: one row per illness record behind a flag; flags: one per register household.
-- An illness as in REVERT_ILLNESS in an exited household above referral_income (never an unexited one).
SELECT i.*
FROM int_member_illness AS i
JOIN int_register_households AS h ON h.household_id = i.household_id
WHERE i.qualifying AND NOT h.unexited AND coalesce(h.income > (SELECT referral_income FROM policy), FALSE)
