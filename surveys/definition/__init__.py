"""A poll's definition: files, schema checks, the read-only spec, markup, schedule, readiness."""
