"""Demo data: a practice world generated deterministically per seed (a tool, not a domain rule)."""
