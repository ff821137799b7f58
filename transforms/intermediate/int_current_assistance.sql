-- One row per assistance record current (在保) at as_of.
-- Reads: social_assistance; policy: as_of.
SELECT a.*
FROM social_assistance AS a
WHERE a.assistance_status = '在保'
  AND (a.end_date IS NULL OR a.end_date > (SELECT as_of FROM policy))
  AND (a.start_date IS NULL OR a.start_date <= (SELECT as_of FROM policy))
