-- RM_BUSINESS_OWNER: one row per business role behind a flag; flags: one per register household.
-- A living member is the legal representative (法定代表人) or an investor (投资人) of a business that exists
-- (存续) or operates (在业). Exempt: other roles (监事, 董事…), businesses 吊销/注销/迁出.
SELECT b.*, m.household_id, m.name_norm AS member_name_norm
FROM business_registry AS b
JOIN int_register_members AS m ON m.id_number = b.id_number AND m.living
WHERE b.role IN ('法定代表人', '投资人') AND b.business_status IN ('存续', '在业')
