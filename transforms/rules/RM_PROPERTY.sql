-- RM_PROPERTY: one row per property right behind a flag; flags: one per register household.
-- A living member owns current (现势) commercial housing (removable_property_natures) for living, business or
-- office use (removable_property_usages). Exempt: relocation, public-rental, low-rent, self-built, affordable and
-- reformed housing, other usages, rights 注销/历史.
SELECT e.*, m.household_id, m.name_norm AS member_name_norm
FROM real_estate AS e
JOIN int_register_members AS m ON m.id_number = e.owner_id_number AND m.living
WHERE e.right_status = '现势'
  AND e.nature IN (SELECT value FROM policy__removable_property_natures)
  AND e.usage IN (SELECT value FROM policy__removable_property_usages)
