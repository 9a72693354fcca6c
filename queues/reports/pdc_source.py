"""Where the report gets its PDC from: `queues.adherence.pdc` (the PQA PDC of the adherence work), in the
shapes the report's figures take."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from queues.adherence.pdc import FillRecord, covered_in_periods, is_adherent, pdc_for_class


@dataclass(frozen=True)
class ClassFill:
    """One dispense in a PQA class, as the PDC measure needs it."""

    drug: str
    fill_date: date
    days_supply: int


# All fills of one patient in one class up to the window's end (earlier supply may carry in),
# window start, window end (inclusive) -> (PDC, adherent), or None when the patient is not in
# the measure for that window (no fill dated in it).
PdcMeasure = Callable[[Sequence[ClassFill], date, date], tuple[float, bool] | None]

# The same measure for several windows at once, on plain (drug, fill date, days supply) tuples:
# (covered days, denominator days) per window, or None where the patient is not in the measure.
PdcPeriods = Callable[
    [Iterable[tuple[str, date, int]], Sequence[tuple[date, date]]], list[tuple[int, int] | None]
]


@dataclass(frozen=True)
class FastPdc:
    """`queues.adherence.pdc`'s one-pass form: both report windows from one span computation."""

    periods: PdcPeriods
    adherent: Callable[[int, int], bool]  # (covered, denominator) -> PDC >= 0.80, exactly


def pqa_fast_pdc() -> FastPdc:
    """The one-pass PDC of `queues.adherence.pdc`."""
    return FastPdc(covered_in_periods, is_adherent)


def pqa_pdc_measure() -> PdcMeasure:
    """The project's PQA PDC (`queues.adherence.pdc.pdc_for_class`), one window at a time."""

    def measure(fills: Sequence[ClassFill], start: date, end: date) -> tuple[float, bool] | None:
        result = pdc_for_class(
            [FillRecord(f.drug, f.fill_date, f.days_supply) for f in fills], start, end
        )
        value = result.pdc
        if not result.in_measure or value is None:
            return None
        return float(value), result.adherent  # adherence decided exactly, not by a float

    return measure
