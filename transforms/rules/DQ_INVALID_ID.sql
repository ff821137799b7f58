-- DQ_INVALID_ID: one row per register row; flags: one per (register household, person).
-- A register row whose identity number is invalid after normalisation, with the problem in words.
SELECT m.*, w.words AS problem_words
FROM int_register_members AS m
LEFT JOIN id_problem_words AS w ON w.problem = m.id_number_problem
WHERE NOT m.id_number_valid
