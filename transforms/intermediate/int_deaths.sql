-- One row per person dead on or before as_of, with the first record that shows it: a record of the deaths
-- register first, else a hukou record of status 死亡 (a status change without a date counts).
-- Reads: deaths, hukou; policy: as_of.
SELECT id_number, death_source, death_file, death_row, death_date
FROM (
    SELECT id_number, death_source, _file AS death_file, _row AS death_row, death_date,
           row_number() OVER (PARTITION BY id_number ORDER BY priority, _ord) AS n
    FROM (
        SELECT id_number, 'deaths' AS death_source, 1 AS priority, _file, _row, _ord, death_date
        FROM deaths
        WHERE death_date <= (SELECT as_of FROM policy)
        UNION ALL
        SELECT id_number, 'hukou' AS death_source, 2 AS priority, _file, _row, _ord, status_date AS death_date
        FROM hukou
        WHERE person_status = '死亡' AND (status_date IS NULL OR status_date <= (SELECT as_of FROM policy))
    ) AS records
) AS ranked
WHERE n = 1
