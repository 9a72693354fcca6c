"""Adherence: proportion of days covered (PDC) and medication supply."""
