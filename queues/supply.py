"""How long a patient's supply of one prescription lasts, from its fills."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta


def run_out_date(fills: Iterable[tuple[date, int]]) -> date | None:
    """The day the supply runs out: last fill + days supply, carrying early-refill surplus forward.

    A refill picked up before the previous supply ended starts where that supply ends, so a
    patient who refills early is not treated as running out sooner (the same shift the PQA PDC
    method applies within one drug).
    """
    end: date | None = None
    for fill_date, days_supply in sorted(fills):
        if days_supply <= 0:
            continue
        start = fill_date if end is None or fill_date >= end else end
        end = start + timedelta(days=days_supply)
    return end
