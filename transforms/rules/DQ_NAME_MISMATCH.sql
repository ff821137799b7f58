-- DQ_NAME_MISMATCH: one row per member; flags: one per (register household, person).
-- The number is in hukou under another name (compared after spaces, width and traditional characters are folded).
SELECT * FROM int_register_members WHERE living AND in_hukou AND name_norm IS DISTINCT FROM hukou_name_norm
