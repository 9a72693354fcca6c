"""Clinical programs: vaccines by age and history, diabetes education, smoking cessation.

Vaccine ages follow CDC adult schedule recommendations (2024–2025): recombinant zoster, 2 doses
from 50; pneumococcal conjugate from 50 (lowered from 65 in Oct 2024) when never given; seasonal
influenza each season from August; RSV once from 75. A pharmacy narrows them through its campaigns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date

from queues.building.rules.base import DueTask, RuleContext

DIABETES_CODES = ("E10", "E11", "E13", "44054006", "46635009")  # ICD-10 prefixes, SNOMED type 1/2
ZOSTER_FROM, PNEUMO_FROM, RSV_FROM = 50, 50, 75
FLU_SEASON_START_MONTH, FLU_SEASON_LAST_MONTH = 8, 3  # August to March


def flu_season(today: date) -> str | None:
    """'2026-27' while the season runs (Aug–Mar), else None."""
    if today.month >= FLU_SEASON_START_MONTH:
        return f"{today.year}-{(today.year + 1) % 100:02d}"
    if today.month <= FLU_SEASON_LAST_MONTH:
        return f"{today.year - 1}-{today.year % 100:02d}"
    return None


def _season_start(season: str) -> date:
    return date(int(season[:4]), FLU_SEASON_START_MONTH, 1)


_NO_DOSES: Counter[str] = Counter()


def vaccines(ctx: RuleContext) -> Iterator[DueTask | None]:
    season = flu_season(ctx.today)
    for patient in ctx.snapshot.patients.values():
        if not patient.reachable:
            continue
        age = patient.age(ctx.today)
        history = ctx.snapshot.immunizations.get(patient.id, ())
        # Most patients have no history at all; a Counter costs microseconds even then.
        doses = Counter(v for v, _ in history) if history else _NO_DOSES
        if age >= ZOSTER_FROM and doses["zoster"] < 2:
            yield ctx.task(
                patient,
                "vaccine",
                "vaccine:zoster",
                f"shingles vaccine: {doses['zoster']} of 2 doses at age {age}",
                vaccine="zoster",
            )
        if age >= PNEUMO_FROM and doses["pneumococcal"] == 0:
            yield ctx.task(
                patient,
                "vaccine",
                "vaccine:pneumococcal",
                f"pneumococcal vaccine never recorded, age {age}",
                vaccine="pneumococcal",
            )
        if age >= RSV_FROM and doses["rsv"] == 0:
            yield ctx.task(
                patient,
                "vaccine",
                "vaccine:rsv",
                f"RSV vaccine never recorded, age {age}",
                vaccine="rsv",
            )
        if season and not any(v == "influenza" and d >= _season_start(season) for v, d in history):
            yield ctx.task(
                patient,
                "vaccine",
                f"vaccine:influenza:{season}",
                f"no flu shot recorded for the {season} season",
                vaccine="influenza",
            )


def has_diabetes(ctx: RuleContext, patient_id: int) -> bool:
    codes = ctx.snapshot.conditions.get(patient_id, set())
    if any(code.startswith(DIABETES_CODES) for code in codes):
        return True
    return any(
        rx.pqa_class == "DIABETES" or "insulin" in rx.ingredient
        for rx in ctx.rx_by_patient.get(patient_id, ())
    )


def diabetes_education(ctx: RuleContext) -> Iterator[DueTask | None]:
    """Only patients with diabetes (a condition or a diabetes medication), once."""
    for patient in ctx.snapshot.patients.values():
        if patient.reachable and has_diabetes(ctx, patient.id):
            yield ctx.task(
                patient,
                "diabetes_education",
                "dsme",
                "living with diabetes: offer a diabetes self-management education referral",
            )


def smoking_cessation(ctx: RuleContext) -> Iterator[DueTask | None]:
    """Recorded tobacco use: ask, advise, refer (once a year)."""
    for patient in ctx.snapshot.patients.values():
        if patient.reachable and patient.tobacco_use:
            yield ctx.task(
                patient,
                "smoking_cessation",
                f"tobacco:{ctx.today.year}",
                "tobacco use on record: ask, advise, refer to the quitline",
            )
