-- One row per vehicle in use of a car class and per living member owning it, with whether it was first
-- registered by the end of the member's identification year (unknown: not), and its type in words
-- (the first name vehicle_type_names gives its class, then the class: 小型轿车,K33).
-- Reads: vehicles, int_register_members; policy: car_class_prefixes, exempt_class_prefixes, vehicle_type_names.
SELECT v.*, m.household_id, m.id_number AS member_id, m.name AS member_name, m.name_norm AS member_name_norm,
       m.identified_year,
       coalesce(v.first_registered <= make_date(CAST(m.identified_year AS INTEGER), 12, 31), FALSE) AS by_identification,
       CASE WHEN coalesce(v.vehicle_class, '') = '' THEN coalesce(v.vehicle_type, '')
            WHEN coalesce(v.vehicle_type, '') NOT IN ('', v.vehicle_class) THEN v.vehicle_type || ',' || v.vehicle_class
            WHEN coalesce(n.class_name, '') <> '' THEN n.class_name || ',' || v.vehicle_class
            ELSE v.vehicle_class END AS vehicle_words
FROM vehicles AS v
JOIN int_register_members AS m ON m.id_number = v.owner_id_number AND m.living
LEFT JOIN (SELECT value AS class_code, min_by(key, _ord) AS class_name
           FROM policy__vehicle_type_names GROUP BY value) AS n ON n.class_code = v.vehicle_class
WHERE v.vehicle_status = '正常'
  AND EXISTS (SELECT 1 FROM policy__car_class_prefixes AS c WHERE starts_with(coalesce(v.vehicle_class, ''), c.value))
  AND NOT EXISTS (SELECT 1 FROM policy__exempt_class_prefixes AS e WHERE starts_with(coalesce(v.vehicle_class, ''), e.value))
