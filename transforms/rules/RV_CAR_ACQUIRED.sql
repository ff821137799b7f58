-- RV_CAR_ACQUIRED: one row per car behind a flag; flags: one per register household.
-- The same car as RM_CAR, first registered after the identification year or on an unknown date: check for exit.
SELECT * FROM int_member_cars WHERE NOT by_identification
