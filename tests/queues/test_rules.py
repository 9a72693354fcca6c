"""Campaign rules, table by table, on a real SQLite file: who is due, and who is not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.building.build import build_queues, due_tasks
from queues.building.rules import DEFAULT_RULES, clinical, medication
from queues.building.rules.snapshot import load_snapshot
from queues.settings import QueueSettings
from queues.store.db import make_engine, session_factory
from queues.store.models import (
    Attempt,
    Campaign,
    Condition,
    Fill,
    Immunization,
    Patient,
    Pharmacy,
    Prescription,
    QueueEntry,
    Task,
    User,
)

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
TODAY = NOW.date()
KINDS = (
    "refill_reminder",
    "med_sync_enrollment",
    "pre_sync_check",
    "post_dispense",
    "adherence",
    "vaccine",
    "diabetes_education",
    "smoking_cessation",
)


@pytest.fixture
def db(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(sqlite_url)
    factory = session_factory(engine)
    with factory.begin() as s:
        ph = Pharmacy(
            code="TX1",
            name="Lone Star",
            caller_id="+12145550100",
            callback_number="+12145550101",
            timezone="America/Chicago",
            state="TX",
            opens_at=time(8),
            closes_at=time(20),
        )
        s.add(ph)
        s.flush()
        for kind in KINDS:
            s.add(Campaign(pharmacy_id=ph.id, kind=kind, name=kind, script_id=kind, weight=1.0))
    yield factory
    engine.dispose()


def patient(s: Session, *, age: int = 60, **flags: object) -> Patient:
    p = Patient(
        pharmacy_id=1,
        mrn=f"M{s.query(Patient).count()}",
        first_name="A",
        last_name="B",
        birth_date=date(TODAY.year - age, 1, 1),
        zip_code="75201",
        state="TX",
        **flags,
    )
    s.add(p)
    s.flush()
    return p


def rx(
    s: Session,
    p: Patient,
    ingredient: str,
    fills: list[tuple[int, int]],
    *,
    pqa: str | None = None,
    chronic: bool = True,
    refills: int = 3,
) -> Prescription:
    """fills: (days before today, days supply)."""
    r = Prescription(
        patient_id=p.id,
        drug_name=ingredient.title(),
        ingredient=ingredient,
        pqa_class=pqa,
        chronic=chronic,
        refills_left=refills,
    )
    s.add(r)
    s.flush()
    for ago, supply in fills:
        s.add(
            Fill(
                prescription_id=r.id,
                fill_date=TODAY - timedelta(days=ago),
                days_supply=supply,
                quantity=supply,
            )
        )
    s.flush()
    return r


def subjects(db: sessionmaker[Session], rules: object = DEFAULT_RULES) -> set[str]:
    with db() as s:
        due = due_tasks(load_snapshot(s, NOW), NOW, QueueSettings(), rules)  # type: ignore[arg-type]
    return {f"{t.patient_id}:{t.subject.split(':')[0]}" for t in due.values()}


@pytest.mark.parametrize(
    ("fills", "due"),
    [
        ([(25, 30)], True),  # runs out in 5 days
        ([(20, 30)], False),  # runs out in 10 days: outside the 7-day window
        ([(35, 30)], True),  # ran out 5 days ago
        ([(80, 30)], False),  # ran out 50 days ago: likely stopped
        ([(40, 30), (25, 30)], False),  # refilled 5 days early: surplus carries, out in 15 days
    ],
)
def test_refill_reminder_window(
    db: sessionmaker[Session], fills: list[tuple[int, int]], due: bool
) -> None:
    with db.begin() as s:
        p = patient(s)
        rx(s, p, "lisinopril", fills, pqa="RASA")
    assert (f"{p.id}:rx" in subjects(db, [medication.refill_reminder])) is due


def test_refill_reminder_skips_do_not_call_and_says_renewal(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        dnc = patient(s, do_not_call=True)
        rx(s, dnc, "lisinopril", [(25, 30)])
        renew = patient(s)
        rx(s, renew, "atorvastatin", [(25, 30)], refills=0)
    with db() as s:
        due = due_tasks(load_snapshot(s, NOW), NOW, QueueSettings(), [medication.refill_reminder])
    [task] = due.values()
    assert task.patient_id == renew.id and "new prescription" in task.reason
    assert "atorvastatin" not in task.reason.lower()


def test_med_sync_enrollment_needs_three_chronic_drugs_on_different_days(
    db: sessionmaker[Session],
) -> None:
    with db.begin() as s:
        three = patient(s)
        for ingredient, ago in (("lisinopril", 5), ("metformin", 12), ("atorvastatin", 20)):
            rx(s, three, ingredient, [(ago, 30)])
        two = patient(s)
        for ingredient, ago in (("lisinopril", 5), ("metformin", 12)):
            rx(s, two, ingredient, [(ago, 30)])
        enrolled = patient(s, med_sync_enrolled=True, med_sync_day=20)
        for ingredient, ago in (("lisinopril", 5), ("metformin", 12), ("atorvastatin", 20)):
            rx(s, enrolled, ingredient, [(ago, 30)])
    got = subjects(db, [medication.med_sync_enrollment])
    assert got == {f"{three.id}:med_sync"}


@pytest.mark.parametrize(("sync_day", "due"), [(TODAY.day + 2, True), (TODAY.day + 10, False)])
def test_pre_sync_check_n_days_before_pickup(
    db: sessionmaker[Session], sync_day: int, due: bool
) -> None:
    with db.begin() as s:
        p = patient(s, med_sync_enrolled=True, med_sync_day=sync_day)
    assert (f"{p.id}:presync" in subjects(db, [medication.pre_sync_check])) is due


@pytest.mark.parametrize(
    ("fills", "due"),
    [
        ([(5, 30)], True),  # first fill 5 days ago: day 5 of 3–7
        ([(2, 30)], False),  # too early
        ([(9, 30)], False),  # too late
        ([(35, 30), (5, 30)], False),  # a refill, not a new start
        ([(250, 30), (5, 30)], True),  # restarted after more than 180 days
    ],
)
def test_post_dispense_new_start_day_3_to_7(
    db: sessionmaker[Session], fills: list[tuple[int, int]], due: bool
) -> None:
    with db.begin() as s:
        p = patient(s)
        rx(s, p, "sertraline", fills, chronic=False)
    assert (f"{p.id}:newstart" in subjects(db, [medication.post_dispense])) is due


def test_vaccines_by_age_and_history(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        young = patient(s, age=40)
        s.add(Immunization(patient_id=young.id, vaccine="influenza", given_on=date(2026, 10, 1)))
        fifty_five = patient(s, age=55)
        s.add(Immunization(patient_id=fifty_five.id, vaccine="zoster", given_on=date(2024, 1, 1)))
        s.add(
            Immunization(
                patient_id=fifty_five.id, vaccine="pneumococcal", given_on=date(2023, 1, 1)
            )
        )
        s.add(
            Immunization(patient_id=fifty_five.id, vaccine="influenza", given_on=date(2025, 10, 1))
        )  # last season: not this one
        eighty = patient(s, age=80)
        for v in ("zoster", "zoster", "pneumococcal", "rsv"):
            s.add(Immunization(patient_id=eighty.id, vaccine=v, given_on=date(2024, 1, 1)))
        s.add(Immunization(patient_id=eighty.id, vaccine="influenza", given_on=date(2026, 9, 15)))
    with db() as s:
        due = due_tasks(load_snapshot(s, NOW), NOW, QueueSettings(), [clinical.vaccines])
    got = {(t.patient_id, t.subject) for t in due.values()}
    assert got == {(fifty_five.id, "vaccine:zoster"), (fifty_five.id, "vaccine:influenza:2026-27")}


def test_flu_season_runs_august_to_march() -> None:
    assert clinical.flu_season(date(2026, 12, 2)) == "2026-27"
    assert clinical.flu_season(date(2027, 3, 31)) == "2026-27"
    assert clinical.flu_season(date(2027, 6, 1)) is None


def test_diabetes_education_only_for_diabetics_and_smoking_for_tobacco(
    db: sessionmaker[Session],
) -> None:
    with db.begin() as s:
        by_condition = patient(s)
        s.add(Condition(patient_id=by_condition.id, code="E11.9", display="Type 2 diabetes"))
        by_drug = patient(s)
        rx(s, by_drug, "metformin", [(100, 30)], pqa="DIABETES")
        neither = patient(s, tobacco_use=True)
        s.add(Condition(patient_id=neither.id, code="I10", display="Hypertension"))
    got = subjects(db, [clinical.diabetes_education, clinical.smoking_cessation])
    assert got == {f"{by_condition.id}:dsme", f"{by_drug.id}:dsme", f"{neither.id}:tobacco"}


def test_build_is_idempotent_and_bundles_one_entry_per_patient(
    db: sessionmaker[Session],
) -> None:
    with db.begin() as s:
        p = patient(s, age=70, tobacco_use=True)
        rx(s, p, "lisinopril", [(25, 30)], pqa="RASA")
    with db.begin() as s:
        first = build_queues(s, NOW, rules=DEFAULT_RULES)
    with db.begin() as s:
        second = build_queues(s, NOW, rules=DEFAULT_RULES)
    assert first.created >= 3  # refill, smoking, vaccines
    assert (second.created, second.closed, second.updated, second.reopened) == (0, 0, 0, 0)
    with db() as s:
        assert s.query(QueueEntry).count() == 1
        tasks = s.scalars(select(Task).where(Task.patient_id == p.id)).all()
        assert len(tasks) == first.created
        assert all("score" in t.priority_parts for t in tasks)


def test_a_new_fill_closes_the_refill_task_and_credits_the_call(
    db: sessionmaker[Session],
) -> None:
    with db.begin() as s:
        p = patient(s)
        r = rx(s, p, "lisinopril", [(25, 30)], pqa="RASA")
        s.add(User(username="ana", display_name="Ana", role="agent", password_hash="x"))
    with db.begin() as s:
        build_queues(s, NOW, rules=DEFAULT_RULES)
    later = NOW + timedelta(days=1)
    with db.begin() as s:
        s.add(
            Attempt(
                uid="a1",
                patient_id=p.id,
                user_id=1,
                started_at=later,
                ended_at=later,
                disposition="completed",
            )
        )
        s.add(
            Fill(
                prescription_id=r.id,
                fill_date=(later + timedelta(days=1)).date(),
                days_supply=30,
                quantity=30,
            )
        )
    with db.begin() as s:
        result = build_queues(s, later + timedelta(days=2), rules=DEFAULT_RULES)
    assert result.filled == 1
    with db() as s:
        task = s.scalars(select(Task).where(Task.prescription_id == r.id)).one()
        assert (task.status, task.closed_reason) == ("closed", "filled")
        attempt_id = s.scalar(select(Attempt.id).where(Attempt.uid == "a1"))
        assert task.success_attempt_id == attempt_id


def test_sooner_run_out_sorts_first(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        later = patient(s)
        rx(s, later, "lisinopril", [(25, 30)])  # out in 5 days
        sooner = patient(s)
        rx(s, sooner, "lisinopril", [(29, 30)])  # out tomorrow
    with db.begin() as s:
        build_queues(s, NOW, rules=[medication.refill_reminder])
    with db() as s:
        order = s.scalars(select(QueueEntry.patient_id).order_by(QueueEntry.sort_key)).all()
    assert order == [sooner.id, later.id]


def test_a_fill_over_a_years_supply_is_left_out_of_the_build_and_named_by_id(
    db: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """A supply no fill may carry (the imports refuse it; a row written by hand can hold it) is
    left out, not fatal, and the warning names the fill and prescription by id, nothing else.
    The fills the build keeps are in date order whatever order the table holds them in."""
    with db.begin() as s:
        p = patient(s)
        r = rx(s, p, "lisinopril", [(10, 30), (70, 30), (40, 30)], pqa="RASA")
        bad = Fill(
            prescription_id=r.id, fill_date=TODAY - timedelta(days=5), days_supply=400, quantity=1
        )
        s.add(bad)
        s.flush()
        bad_id = bad.id
    with caplog.at_level("WARNING"), db() as s:
        snapshot = load_snapshot(s, NOW)
    assert snapshot.fills[r.id] == [
        (TODAY - timedelta(days=70), 30),
        (TODAY - timedelta(days=40), 30),
        (TODAY - timedelta(days=10), 30),
    ]
    warned = [m.getMessage() for m in caplog.records if "left out" in m.getMessage()]
    assert warned == [
        f"queue build: 1 fill(s) left out, days supply over 365 per fill: "
        f"fill {bad_id} (prescription {r.id}): 400 days"
    ]
