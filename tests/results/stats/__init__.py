"""Tests of results.stats, one module per module of it. Pure numerics: no database, they run
with ``-p no:django``. Every warning is an error here, so a test also fails if a function
prints a RuntimeWarning on degenerate data."""
