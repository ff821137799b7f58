-- RV_UNENROLLED: one row per member; flags: one per (register household, person).
-- A living member of compulsory-education age with no student record at all.
SELECT * FROM int_unenrolled_members
