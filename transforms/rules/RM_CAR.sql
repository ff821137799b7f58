-- RM_CAR: one row per car behind a flag; flags: one per register household.
-- A living member owns a car in use, first registered by the end of the identification year (错评).
-- Exempt (in int_member_cars): 注销/报废/转出 and other statuses; classes outside car_class_prefixes or in
-- exempt_class_prefixes (低速货车, 三轮, 摩托, 拖拉机).
SELECT * FROM int_member_cars WHERE by_identification
