-- REVERT_ILLNESS: one row per illness record behind a flag; flags: one per register household.
-- An exited household with a serious illness not cured, or a chronic one with heavy yearly cost
-- (int_member_illness), its income at most referral_income (above it: REFER_HEALTH).
SELECT i.*
FROM int_member_illness AS i
JOIN int_register_households AS h ON h.household_id = i.household_id
WHERE i.qualifying AND NOT h.unexited AND NOT coalesce(h.income > (SELECT referral_income FROM policy), FALSE)
