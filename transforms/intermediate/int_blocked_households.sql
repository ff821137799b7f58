-- One row per serving cadre in a blocking position, with the hukou household he or she belongs to.
-- Reads: cadres, int_hukou_persons; policy: blocking_cadre_positions.
SELECT c.*, h.hukou_household_id
FROM cadres AS c
JOIN int_hukou_persons AS h ON h.id_number = c.id_number
WHERE c.term_status = '在任' AND c.position IN (SELECT value FROM policy__blocking_cadre_positions)
