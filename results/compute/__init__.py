"""From answers to a results snapshot: loading, aggregates, breakdowns, option tables, recompute."""
