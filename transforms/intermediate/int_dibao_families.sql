-- One row per current 低保 record of a family that would be added, mapped to its living hukou person: every
-- listed member of a first/second-class family has lost labour capacity, the family's income is known and at
-- most the referral income, and no member is on the register.
-- Reads: int_current_assistance, int_register_members, int_persons_living;
-- policy: dibao_classes_for_addition, incapacity_levels, referral_income.
WITH dibao AS (
    SELECT a.*,
           coalesce(a.dibao_class IN (SELECT value FROM policy__dibao_classes_for_addition), FALSE) AS eligible_class,
           coalesce(a.labor_capacity IN (SELECT value FROM policy__incapacity_levels), FALSE) AS incapable,
           a.id_number IN (SELECT id_number FROM int_register_members WHERE id_number_valid) AS on_register
    FROM int_current_assistance AS a
    WHERE a.assistance_type = '低保'
),
families AS (
    SELECT assistance_household_id
    FROM dibao
    WHERE assistance_household_id IS NOT NULL
    GROUP BY assistance_household_id
    HAVING bool_and(eligible_class) AND bool_and(incapable) AND NOT bool_or(coalesce(on_register, FALSE))
       AND max(income_per_capita) <= (SELECT referral_income FROM policy)
       AND count(income_per_capita) = count(*)
)
SELECT d.*, p.hukou_household_id, p.address_code AS village_code
FROM dibao AS d
JOIN int_persons_living AS p ON p.id_number = d.id_number
WHERE d.assistance_household_id IN (SELECT assistance_household_id FROM families)
