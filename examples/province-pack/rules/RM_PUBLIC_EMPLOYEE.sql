-- RM_PUBLIC_EMPLOYEE: one row per payroll record behind a flag; flags: one per register household.
-- A living member is on the public payroll (财政供养, 在职). Exempt: retired (退休) and departed (离职) staff.
SELECT e.*, m.household_id, m.name_norm AS member_name_norm
FROM public_employees AS e
JOIN int_register_members AS m ON m.id_number = e.id_number AND m.living
WHERE e.payroll_status = '在职'
