"""How long a patient's supply of one prescription lasts, from its fills."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

# The longest supply one fill may carry. Plans cap a fill at 90 or 100 days and state law at a
# year at most; anything longer is a data error, never a year's supply on hand.
MAX_DAYS_SUPPLY = 365


def run_out_date(fills: Iterable[tuple[date, int]]) -> date | None:
    """The day the supply runs out: last fill + days supply, carrying early-refill surplus forward.

    A refill picked up before the previous supply ended starts where that supply ends, so a
    patient who refills early is not treated as running out sooner (the same shift the PQA PDC
    method applies within one drug). A fill of more than MAX_DAYS_SUPPLY days is left out: it is a
    data error (the imports refuse it), and 3,000,000 days would run past the last date there is.
    """
    return run_out_of_sorted(sorted(fills))


def run_out_of_sorted(fills: Iterable[tuple[date, int]]) -> date | None:
    """`run_out_date` of fills already in date order (as the build's snapshot holds them)."""
    end: int | None = None  # day ordinals: a build runs this for every prescription
    for fill_date, days_supply in fills:
        if days_supply <= 0 or days_supply > MAX_DAYS_SUPPLY:
            continue
        day = fill_date.toordinal()
        end = (day if end is None or day >= end else end) + days_supply
    return None if end is None else date.fromordinal(end)
