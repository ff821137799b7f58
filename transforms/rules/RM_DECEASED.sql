-- RM_DECEASED: one row per dead member behind a flag; flags: one per register household.
-- Every member of the household is dead (a member with an invalid number is not proven dead). The record shown
-- is the first that shows the death (int_deaths).
SELECT m.household_id, m.id_number, m.name, m.name_norm, m.death_source, m.death_date,
       m.death_file AS _file, m.death_row AS _row, s.title AS death_source_title
FROM int_register_members AS m
JOIN int_register_households AS h ON h.household_id = m.household_id
LEFT JOIN sources AS s ON s.source = m.death_source
WHERE m.dead AND h.dead = h.members AND h.members > 0
