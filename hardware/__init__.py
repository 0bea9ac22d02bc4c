"""Hardware cost: measurement, lookup tables, predictors, benchmark tables and DVFS."""
