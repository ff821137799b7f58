-- REFER_EDUCATION: one row per dropout behind a flag; flags: one per register household.
-- A dropout as in REVERT_DROPOUT in an unexited household, or in an exited one above referral_income.
SELECT d.*
FROM int_member_dropouts AS d
JOIN int_register_households AS h ON h.household_id = d.household_id
WHERE NOT d.exempt_reason
  AND (h.unexited OR coalesce(h.income > (SELECT referral_income FROM policy), FALSE))
