-- REVERT_DROPOUT: one row per dropout behind a flag; flags: one per register household.
-- An exited household with a compulsory-age dropout, its income at most referral_income. Exempt: reasons
-- 因病/因残/因智 (exempt_dropout_reasons); above the referral income it is REFER_EDUCATION.
SELECT d.*
FROM int_member_dropouts AS d
JOIN int_register_households AS h ON h.household_id = d.household_id
WHERE NOT d.exempt_reason
  AND NOT h.unexited AND NOT coalesce(h.income > (SELECT referral_income FROM policy), FALSE)
