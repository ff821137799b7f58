-- One row per illness record of a living member, with the household's out-of-pocket cost in its latest year
-- and whether it qualifies: 大病 not cured, or 慢性病 with a household cost of at least large_medical_expense.
-- Reads: illness, int_register_members; policy: large_medical_expense.
WITH records AS (
    SELECT i.*, m.household_id, m.name_norm AS member_name_norm,
           max(i.year) OVER (PARTITION BY m.household_id) AS latest_year
    FROM illness AS i
    JOIN int_register_members AS m ON m.id_number = i.id_number AND m.living
),
costs AS (
    SELECT r.*,
           sum(CASE WHEN r.year = r.latest_year THEN coalesce(r.out_of_pocket, 0) ELSE 0 END)
               OVER (PARTITION BY r.household_id) AS household_cost,
           r.category = '大病' AND r.treatment_status IS DISTINCT FROM '已治愈' AS serious
    FROM records AS r
)
SELECT c.*,
       coalesce(c.serious, FALSE)
       OR coalesce(c.category = '慢性病' AND c.household_cost >= (SELECT large_medical_expense FROM policy), FALSE)
       AS qualifying
FROM costs AS c
