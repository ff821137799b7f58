-- REFER_INSURANCE: one row per member; flags: one per (register household, person).
-- A living member without a 参保 record for the year of as_of.
SELECT * FROM int_uninsured_members
