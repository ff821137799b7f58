-- RM_MEMBER_DECEASED: one row per dead member; flags: one per (register household, person).
-- One member (not all) is dead: remove that person and recompute the household size.
SELECT m.household_id, m.id_number, m.name, m.name_norm, m.death_source, m.death_date,
       m.death_file AS _file, m.death_row AS _row, s.title AS death_source_title
FROM int_register_members AS m
JOIN int_register_households AS h ON h.household_id = m.household_id
LEFT JOIN sources AS s ON s.source = m.death_source
WHERE m.dead AND NOT (h.dead = h.members AND h.members > 0)
