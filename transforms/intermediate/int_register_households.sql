-- One row per register household: its attributes (the first member's that has them), head, the hukou household
-- most of its members belong to (on a tie the greatest number), and member counts.
-- Reads: int_register_members.
WITH attributes AS (
    SELECT household_id,
           min_by(village_code, _ord) FILTER (WHERE village_code IS NOT NULL) AS village_code,
           min_by(status, _ord) FILTER (WHERE status IS NOT NULL) AS status,
           coalesce(min_by(unexited, _ord) FILTER (WHERE unexited IS NOT NULL), FALSE) AS unexited,
           min_by(income_per_capita, _ord) FILTER (WHERE income_per_capita IS NOT NULL) AS income,
           min_by(identified_year, _ord) FILTER (WHERE identified_year IS NOT NULL) AS identified_year,
           min_by(safe_water, _ord) FILTER (WHERE safe_water IS NOT NULL) AS safe_water,
           min_by(electricity, _ord) FILTER (WHERE electricity IS NOT NULL) AS electricity,
           count(*) AS members,
           sum(CASE WHEN living THEN 1 ELSE 0 END) AS living,
           sum(CASE WHEN dead THEN 1 ELSE 0 END) AS dead,
           sum(CASE WHEN id_number_valid THEN 0 ELSE 1 END) AS invalid_ids
    FROM int_register_members
    WHERE household_id IS NOT NULL
    GROUP BY household_id
),
hukou_households AS (
    SELECT household_id, hukou_household_id,
           row_number() OVER (PARTITION BY household_id ORDER BY count(*) DESC, hukou_household_id DESC) AS n
    FROM int_register_members
    WHERE hukou_household_id IS NOT NULL
    GROUP BY household_id, hukou_household_id
),
heads AS (
    SELECT household_id, id_number AS head_id_number, name AS head_name,
           row_number() OVER (PARTITION BY household_id ORDER BY _ord) AS n
    FROM int_register_members
    WHERE relation = '户主' AND id_number_valid
)
SELECT a.*, k.hukou_household_id, h.head_id_number, h.head_name
FROM attributes AS a
LEFT JOIN hukou_households AS k ON k.household_id = a.household_id AND k.n = 1
LEFT JOIN heads AS h ON h.household_id = a.household_id AND h.n = 1
