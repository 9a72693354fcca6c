"""PDC lines of a report section: per PQA class, the start and end windows' figures.

The fast path (`queues.adherence.pdc.covered_in_periods`) measures both windows from one span computation
per patient and class, on the rows as fetched; a measure passed in by the caller is applied per
window on `ClassFill`s, as it always was. Both give the same figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from itertools import groupby
from operator import itemgetter

from queues.reports.model import ADHERENT, PdcFigures, PdcLine
from queues.reports.pdc_source import ClassFill, FastPdc, PdcMeasure

Window = tuple[date, date]
Pair = tuple[tuple[float, bool] | None, tuple[float, bool] | None]
# (PQA class, patient id, drug, fill date, days supply), ordered by class then patient
Row = tuple[str, int, str, date, int]

_FILL = itemgetter(2, 3, 4)


def pdc_figures(
    rows: Iterable[Row],
    days: int,
    w0: Window,
    w1: Window,
    measure: FastPdc | PdcMeasure,
) -> PdcFigures:
    if isinstance(measure, FastPdc):
        per_class = _fast(rows, w0, w1, measure)
    else:
        per_class = _each(rows, w0, w1, measure)
    lines = []
    for cls, pairs in sorted(per_class.items()):
        s = [a for a, _ in pairs if a is not None]
        e = [b for _, b in pairs if b is not None]
        both = [(a[1], b[1]) for a, b in pairs if a is not None and b is not None]
        lines.append(
            PdcLine(
                pqa_class=cls,
                patients_start=len(s),
                patients_end=len(e),
                mean_start=sum(v for v, _ in s) / len(s) if s else None,
                mean_end=sum(v for v, _ in e) / len(e) if e else None,
                adherent_start=sum(1 for _, ok in s if ok),
                adherent_end=sum(1 for _, ok in e if ok),
                crossed_up=sum(1 for was, now in both if now and not was),
                crossed_down=sum(1 for was, now in both if was and not now),
            )
        )
    note = (
        f"PQA PDC over {days}-day windows: {w0[0]} to {w0[1]} (start), "
        f"{w1[0]} to {w1[1]} (end), from each patient's first fill in the window; supply on "
        f"hand from earlier fills carries in; adherent at {ADHERENT:.2f} or more"
    )
    return PdcFigures(True, note, days, w0, w1, tuple(lines))


def _groups(rows: Iterable[Row]) -> dict[str, dict[int, list[Row]]]:
    """Rows by class, then patient in ascending order (the order the means are summed in)."""
    out: dict[str, dict[int, list[Row]]] = defaultdict(dict)
    for (cls, patient), run in groupby(rows, key=itemgetter(0, 1)):
        out[str(cls)].setdefault(patient, []).extend(run)
    return {cls: dict(sorted(by_patient.items())) for cls, by_patient in out.items()}


def _fast(rows: Iterable[Row], w0: Window, w1: Window, fast: FastPdc) -> dict[str, list[Pair]]:
    windows = (w0, w1)
    adherent = fast.adherent
    per_class: dict[str, list[Pair]] = {}
    for cls, by_patient in _groups(rows).items():
        pairs: list[Pair] = []
        for fills in by_patient.values():
            start, end = fast.periods(map(_FILL, fills), windows)
            pairs.append(
                (
                    None if start is None else (start[0] / start[1], adherent(*start)),
                    None if end is None else (end[0] / end[1], adherent(*end)),
                )
            )
        per_class[cls] = pairs
    return per_class


def _each(
    rows: Iterable[Row], w0: Window, w1: Window, measure: PdcMeasure
) -> dict[str, list[Pair]]:
    per_class: dict[str, list[Pair]] = {}
    for cls, by_patient in _groups(rows).items():
        pairs: list[Pair] = []
        for found in by_patient.values():
            fills = sorted((ClassFill(d, day, n) for _, _, d, day, n in found), key=_by_date)
            before = [f for f in fills if f.fill_date <= w0[1]]
            pairs.append((measure(before, *w0) if before else None, measure(fills, *w1)))
        per_class[cls] = pairs
    return per_class


def _by_date(fill: ClassFill) -> date:
    return fill.fill_date
