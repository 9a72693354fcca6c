"""Adherence (PQA): PDC under 0.80 in a measure class this year, with the PQA exclusions, ranked by
how close the patient still is to reaching 0.80 by year end (out of reach ranks lower, not dropped).

Classes: RAS antagonists (RASA), statins (STATIN), non-insulin diabetes medications (DIABETES).
In the measure: 18 or older by year end and two fills of the class on different dates this year.
Excluded (PQA): a fill of insulin this year for DIABETES, of sacubitril/valsartan for RASA; hospice
and ESRD for every class.

When a call is due: the patient is below 0.80 to date and their supply of the class runs out within
the refill window, or has run out — the moment a call can still add covered days. A fill that puts
supply on hand past the window means the patient is back on track: the task is no longer due and
the build closes it as "filled", crediting the call that asked. The subject carries the run-out
date, so the next lapse is a new task even after a call closed this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache

from queues.adherence.pdc import THRESHOLD, FillRecord, reachable_by
from queues.building.rules.base import DueTask, RuleContext
from queues.building.rules.snapshot import RxRow

MEASURE_CLASSES = ("DIABETES", "RASA", "STATIN")
MIN_AGE = 18
# A fill of one of these this year takes the patient out of that class's measure.
EXCLUDING_INGREDIENTS = {"DIABETES": ("insulin",), "RASA": ("sacubitril",)}


def adherence(ctx: RuleContext) -> Iterator[DueTask | None]:
    today = ctx.today
    year_start = date(today.year, 1, 1)
    year_end = date(today.year, 12, 31)
    horizon = today + timedelta(days=ctx.settings.refill_window_days)
    patients = ctx.snapshot.patients
    for patient_id, rxs in ctx.rx_by_patient.items():
        if not any(rx.pqa_class in MEASURE_CLASSES for rx in rxs):
            continue  # the cheapest test first: most patients of a build stop at one of these
        patient = patients[patient_id]
        if not patient.reachable or patient.hospice or patient.esrd:
            continue
        if patient.age(year_end) < MIN_AGE:
            continue
        for pqa_class, fills in _fills_by_class(ctx, rxs, year_start, horizon).items():
            reach = reachable_by(fills, year_start, today, year_end)
            to_date = reach.to_date
            if to_date.adherent or to_date.pdc is None or reach.run_out is None:
                continue
            if reach.run_out > horizon:
                continue  # supply on hand past the window: nothing a call can add today
            pdc = to_date.pdc
            share = reach.share_needed
            closeness = (
                f"can still reach 80% by Dec 31 with {reach.days_needed} more day(s) covered"
                if reach.reachable
                else "can no longer reach 80% this year"
            )
            yield ctx.task(
                patient,
                "adherence",
                f"pdc:{pqa_class}:{reach.run_out.isoformat()}",
                # No drug or class: the agent may read this before identity is verified.
                f"a daily medication was on hand {pdc:.0%} of days this year; {closeness}",
                due_on=reach.run_out,
                pdc=round(pdc, 4),
                pdc_gap=round(float(THRESHOLD) - pdc, 4),
                reachable=reach.reachable,
                days_needed=reach.days_needed,
                days_open=reach.days_open,
                share_needed=None if share is None else round(min(share, 99.0), 4),
            )


def _fills_by_class(
    ctx: RuleContext, rxs: list[RxRow], year_start: date, horizon: date
) -> dict[str, list[FillRecord]]:
    """The patient's fills per measure class, leaving out the classes an exclusion removes,
    those with supply on hand past the horizon (no call is due for them today) and those with
    fewer than two fill dates this year (not in the measure)."""
    fills, today = ctx.snapshot.fills, ctx.today
    by_class: dict[str, list[RxRow]] = {}
    excluded: set[str] = set()
    for rx in rxs:
        for pqa_class in _excludes(rx.ingredient):
            if any(year_start <= d <= today for d, _ in fills.get(rx.id, ())):
                excluded.add(pqa_class)
        if rx.pqa_class in MEASURE_CLASSES:
            by_class.setdefault(rx.pqa_class, []).append(rx)
    out: dict[str, list[FillRecord]] = {}
    for c, class_rxs in sorted(by_class.items()):
        if c in excluded or any(_lasts_past(ctx, rx, horizon) for rx in class_rxs):
            continue
        records = [
            FillRecord(rx.ingredient, d, days)
            for rx in class_rxs
            for d, days in fills.get(rx.id, ())
        ]
        in_year = {r.fill_date for r in records if year_start <= r.fill_date <= today}
        if len(in_year) >= 2:
            out[c] = records
    return out


@cache
def _excludes(ingredient: str) -> tuple[str, ...]:
    """The measure classes a fill of this ingredient this year takes the patient out of."""
    name = ingredient.lower()
    return tuple(
        c for c, markers in EXCLUDING_INGREDIENTS.items() if any(m in name for m in markers)
    )


def _lasts_past(ctx: RuleContext, rx: RxRow, horizon: date) -> bool:
    """This prescription's supply alone lasts past the horizon, so its class's does too: PQA
    shifts a drug's fills forward and unions the drugs, so a class runs out no sooner than any
    one of its prescriptions. A cheap test that spares most patients the PDC work."""
    fills = ctx.snapshot.fills.get(rx.id)
    if not fills or fills[-1][0] > ctx.today:  # a prescription's fills are sorted by date
        return False  # a fill dated after today (a build with --now in the past) is not on hand
    end = ctx.run_out(rx.id)
    return end is not None and end > horizon
