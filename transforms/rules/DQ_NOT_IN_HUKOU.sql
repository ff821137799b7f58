-- DQ_NOT_IN_HUKOU: one row per member; flags: one per (register household, person).
-- A living member (valid number) absent from hukou.
SELECT * FROM int_register_members WHERE living AND NOT in_hukou
