"""Medication campaigns: refill reminder, med-sync enrollment, pre-sync check, post-dispense follow-up.

Each rule reads the build snapshot and yields the tasks that are due today; reasons carry no drug
names, because the agent may read them aloud before the patient's identity is verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from queues.building.rules.base import DueTask, RuleContext

OVERDUE_LIMIT_DAYS = 30  # a supply gone longer than this: the patient has likely stopped the drug
NEW_START_LOOKBACK_DAYS = 180  # "new start": no fill of the ingredient in the 180 days before
NEW_START_CALL_DAYS = (3, 7)  # post-dispense follow-up window after the first fill
MED_SYNC_MIN_CHRONIC = 3
ACTIVE_FILL_DAYS = 120  # a chronic drug counts for med sync if filled in the last 120 days


def refill_reminder(ctx: RuleContext) -> Iterator[DueTask | None]:
    """A chronic prescription whose supply runs out within N days (refills left or renewal needed)."""
    today = ctx.today
    horizon = today + timedelta(days=ctx.settings.refill_window_days)
    oldest = today - timedelta(days=OVERDUE_LIMIT_DAYS)
    patients, run_out_of = ctx.snapshot.patients, ctx.run_out
    # A run-out date's words, worked out once per date: a build's hundred thousand reminders
    # share a few dozen dates.
    said: dict[tuple[date, bool], tuple[str, str, int]] = {}
    for rx in ctx.snapshot.prescriptions:
        if not rx.chronic:
            continue
        patient = patients[rx.patient_id]
        if not patient.reachable:
            continue
        run_out = run_out_of(rx.id)
        if run_out is None or not (oldest <= run_out <= horizon):
            continue
        renewal = rx.refills_left <= 0
        words = said.get((run_out, renewal))
        if words is None:
            words = said[run_out, renewal] = _run_out_words(run_out, today, renewal)
        iso, reason, days = words
        yield ctx.task(
            patient,
            "refill_reminder",
            f"rx:{rx.id}:{iso}",
            reason,
            due_on=run_out,
            prescription_id=rx.id,
            days_to_run_out=days,
        )


def _run_out_words(run_out: date, today: date, renewal: bool) -> tuple[str, str, int]:
    """The date as a subject holds it, the reminder's reason, and the days to the run-out."""
    days = (run_out - today).days
    when = f"ran out {-days} day(s) ago" if days < 0 else f"runs out in {days} day(s)"
    # No refills left is a renewal from the prescriber, never worded as a refill.
    more = " — no refills left: a renewal (new prescription) from the prescriber" if renewal else ""
    return run_out.isoformat(), f"a chronic medication {when} ({run_out:%b %d}){more}", days


def _chronic_run_outs(ctx: RuleContext, patient_id: int) -> list[date]:
    recent = ctx.today - timedelta(days=ACTIVE_FILL_DAYS)
    out = []
    for rx in ctx.rx_by_patient.get(patient_id, ()):
        fills = ctx.snapshot.fills.get(rx.id, ())
        if rx.chronic and fills and fills[-1][0] >= recent:
            end = ctx.run_out(rx.id)
            if end is not None:
                out.append(end)
    return out


def med_sync_enrollment(ctx: RuleContext) -> Iterator[DueTask | None]:
    """Three or more chronic medications that run out on different days: offer one pickup day."""
    for patient_id, _ in ctx.rx_by_patient.items():
        patient = ctx.snapshot.patients[patient_id]
        if patient.med_sync_enrolled or not patient.reachable:
            continue
        run_outs = _chronic_run_outs(ctx, patient_id)
        if len(run_outs) >= MED_SYNC_MIN_CHRONIC and len(set(run_outs)) >= 2:
            yield ctx.task(
                patient,
                "med_sync_enrollment",
                "med_sync",
                f"{len(run_outs)} chronic medications refilled on {len(set(run_outs))} "
                "different days: offer medication synchronization",
            )


def next_sync_date(sync_day: int, today: date) -> date:
    """The next day-of-month `sync_day` on or after today (clamped to short months)."""
    import calendar

    year, month = today.year, today.month
    for _ in range(2):
        last = calendar.monthrange(year, month)[1]
        candidate = date(year, month, min(sync_day, last))
        if candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("unreachable")


def pre_sync_check(ctx: RuleContext) -> Iterator[DueTask | None]:
    """Enrolled patients N days before their sync date: confirm changes before the pharmacy fills."""
    for patient in ctx.snapshot.patients.values():
        if not (patient.med_sync_enrolled and patient.med_sync_day and patient.reachable):
            continue
        sync = next_sync_date(patient.med_sync_day, ctx.today)
        days = (sync - ctx.today).days
        if 0 <= days <= ctx.settings.pre_sync_days:
            yield ctx.task(
                patient,
                "pre_sync_check",
                f"presync:{sync.isoformat()}",
                f"med-sync pickup on {sync:%b %d}: confirm changes before the pharmacy fills",
                due_on=sync,
                days_to_sync=days,
            )


def post_dispense(ctx: RuleContext) -> Iterator[DueTask | None]:
    """A new start (first fill of an ingredient in 180 days) is called on day 3 to 7."""
    lo, hi = NEW_START_CALL_DAYS
    earliest, latest = ctx.today - timedelta(days=hi), ctx.today - timedelta(days=lo)
    fills_of = ctx.snapshot.fills
    for patient_id, rxs in ctx.rx_by_patient.items():
        patient = ctx.snapshot.patients[patient_id]
        if not patient.reachable:
            continue
        # An ingredient's latest fill is one of its prescriptions' latest: with none of those 3-7
        # days ago, nothing here can be a new start to call (most patients stop here).
        if not any(
            earliest <= fills_of[rx.id][-1][0] <= latest for rx in rxs if fills_of.get(rx.id)
        ):
            continue
        by_ingredient: dict[str, list[tuple[date, int]]] = {}
        for rx in rxs:
            by_ingredient.setdefault(rx.ingredient, []).extend(fills_of.get(rx.id, ()))
        for ingredient, fills in sorted(by_ingredient.items()):
            if not fills or not lo <= (ctx.today - max(fills)[0]).days <= hi:
                continue  # only a latest fill dated 3-7 days ago can be a new start to call
            dates = sorted(d for d, _ in fills)
            latest_start = next(
                (
                    d
                    for i, d in reversed(list(enumerate(dates)))
                    if i == 0 or (d - dates[i - 1]).days > NEW_START_LOOKBACK_DAYS
                ),
                None,
            )
            if latest_start is None:
                continue
            day = (ctx.today - latest_start).days
            if lo <= day <= hi and dates[-1] == latest_start:
                yield ctx.task(
                    patient,
                    "post_dispense",
                    f"newstart:{ingredient}:{latest_start.isoformat()}",
                    f"new medication started {day} days ago: check how it is going",
                    due_on=latest_start + timedelta(days=hi),
                    new_start=True,
                )
