"""Where the report gets its PDC from: `queues.pdc` (the PQA PDC of the adherence work), imported
lazily so the report runs, saying PDC is unavailable, on a tree that does not have it yet."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any


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
    """`queues.pdc`'s one-pass form: both report windows from one span computation."""

    periods: PdcPeriods
    adherent: Callable[[int, int], bool]  # (covered, denominator) -> PDC >= 0.80, exactly


def pqa_fast_pdc() -> FastPdc | None:
    """The one-pass PDC of `queues.pdc`, or None when the module (or that form) is not there."""
    module = _pdc_module()
    if module is None:
        return None
    periods = getattr(module, "covered_in_periods", None)
    adherent = getattr(module, "is_adherent", None)
    if periods is None or adherent is None:
        return None
    return FastPdc(periods, adherent)


def _pdc_module() -> Any:
    try:
        return importlib.import_module("queues.pdc")
    except ModuleNotFoundError as exc:
        if exc.name != "queues.pdc":
            raise
        return None


def pqa_pdc_measure() -> PdcMeasure | None:
    """The project's PQA PDC (`queues.pdc.pdc_for_class`), or None while it is not there."""
    module = _pdc_module()
    if module is None:
        return None
    fn = getattr(module, "pdc_for_class", None)
    record = getattr(module, "FillRecord", None)
    if fn is None or record is None:
        return None
    return _adapt(fn, record)


def _adapt(fn: Any, record: Any) -> PdcMeasure:
    def measure(fills: Sequence[ClassFill], start: date, end: date) -> tuple[float, bool] | None:
        result = fn([record(f.drug, f.fill_date, f.days_supply) for f in fills], start, end)
        value = result.pdc
        if not result.in_measure or value is None:
            return None
        return float(value), bool(result.adherent)  # adherence decided exactly, not by a float

    return measure
