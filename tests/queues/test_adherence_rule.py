"""The adherence campaign through a real queue build, on an SQLite file and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import queues.building.build
import queues.building.rules
from queues.building.build import build_queues
from queues.building.priority import explain
from queues.building.rules.adherence import adherence
from queues.store.models import (
    Attempt,
    Campaign,
    Fill,
    Patient,
    Prescription,
    QueueEntry,
    Task,
    User,
)
from tests.conftest import add_pharmacy

NOW = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)  # Wednesday Jul 1, 10:00 in Chicago
ONLY = [adherence]

# Fills as (date, days supply); by Jul 1, with the refill window of 7 days:
# CLOSE: 142 of 182 days (0.78); 147 more needed by Dec 31, 180 open days: 82% of them.
CLOSE = [(date(2026, 1, 1), 85), (date(2026, 5, 3), 30), (date(2026, 6, 5), 30)]
# FAR: 117 of 182 (0.64); 172 more needed of the 180 open days: 96% of them.
FAR = [
    (date(2026, 1, 1), 30),
    (date(2026, 2, 1), 30),
    (date(2026, 4, 1), 30),
    (date(2026, 6, 5), 30),
]
# OUT: 87 of 182 (0.48); 202 more needed, only 180 open: out of reach.
OUT = [(date(2026, 1, 1), 30), (date(2026, 3, 1), 30), (date(2026, 6, 5), 30)]
# All three run out on Jul 5, inside the 7-day window.


def patient(s: Session, **flags: object) -> Patient:
    n = s.query(Patient).count()
    p = Patient(
        pharmacy_id=1,
        mrn=f"M{n}",
        first_name="Test",
        last_name=f"P{n}",
        birth_date=flags.pop("birth_date", date(1960, 5, 1)),
        zip_code="75201",
        state="TX",
        **flags,
    )
    s.add(p)
    s.flush()
    return p


def rx(
    s: Session, p: Patient, ingredient: str, fills: list[tuple[date, int]], pqa: str | None
) -> Prescription:
    r = Prescription(
        patient_id=p.id,
        drug_name=ingredient.title(),
        ingredient=ingredient,
        pqa_class=pqa,
        chronic=True,
        refills_left=3,
    )
    s.add(r)
    s.flush()
    for day, supply in fills:
        s.add(Fill(prescription_id=r.id, fill_date=day, days_supply=supply, quantity=supply))
    s.flush()
    return r


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with sessions.begin() as s:
        ph = add_pharmacy(s)
        s.add(Campaign(pharmacy_id=ph, kind="adherence", name="Adherence", script_id="adherence"))
    return sessions


def open_tasks(db: sessionmaker[Session]) -> dict[int, list[Task]]:
    out: dict[int, list[Task]] = {}
    with db() as s:
        for t in s.scalars(select(Task).where(Task.status == "open").order_by(Task.subject)):
            out.setdefault(t.patient_id, []).append(t)
    return out


def test_due_below_080_with_the_pqa_exclusions(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        due = patient(s)
        rx(s, due, "lisinopril", FAR, "RASA")
        skipped = [patient(s, hospice=True), patient(s, esrd=True), patient(s, do_not_call=True)]
        for p in skipped:
            rx(s, p, "lisinopril", FAR, "RASA")
        on_insulin = patient(s)  # insulin takes diabetes out of the measure, not the statin
        rx(s, on_insulin, "metformin", FAR, "DIABETES")
        rx(s, on_insulin, "insulin glargine", [(date(2026, 3, 1), 30)], None)
        rx(s, on_insulin, "atorvastatin", FAR, "STATIN")
        on_entresto = patient(s)
        rx(s, on_entresto, "lisinopril", FAR, "RASA")
        rx(s, on_entresto, "sacubitril/valsartan", [(date(2026, 2, 1), 30)], "RASA")
        one_fill = patient(s)  # one fill this year: not in the measure yet
        rx(s, one_fill, "losartan", [(date(2025, 12, 1), 90), (date(2026, 6, 5), 30)], "RASA")
        adherent = patient(s)
        rx(s, adherent, "losartan", [(date(2026, 1, 1), 180), (date(2026, 6, 5), 30)], "RASA")
        supplied = patient(s)  # below 0.80 but with 90 days on hand: nothing to do today
        rx(s, supplied, "simvastatin", [*FAR[:3], (date(2026, 6, 28), 90)], "STATIN")
        minor = patient(s, birth_date=date(2010, 1, 1))
        rx(s, minor, "lisinopril", FAR, "RASA")
    with db.begin() as s:
        build_queues(s, NOW, rules=ONLY)
    got = {pid: [t.subject for t in tasks] for pid, tasks in open_tasks(db).items()}
    assert got == {due.id: ["pdc:RASA:2026-07-05"], on_insulin.id: ["pdc:STATIN:2026-07-05"]}


def test_parts_and_reason_say_why_without_naming_the_drug(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        p = patient(s)
        rx(s, p, "atorvastatin", CLOSE, "STATIN")
    with db.begin() as s:
        build_queues(s, NOW, rules=ONLY)
    [task] = open_tasks(db)[p.id]
    parts = task.priority_parts
    assert parts["pdc"] == round(142 / 182, 4) and parts["pdc_gap"] == round(0.8 - 142 / 182, 4)
    assert (parts["reachable"], parts["days_needed"], parts["days_open"]) == (True, 147, 180)
    assert "PDC gap 0.02" in explain(parts)
    assert "78% of days" in task.reason and "147 more day(s)" in task.reason
    assert "statin" not in task.reason.lower() and "cholesterol" not in task.reason.lower()


def queue_order(db: sessionmaker[Session]) -> list[int]:
    with db() as s:
        return list(s.scalars(select(QueueEntry.patient_id).order_by(QueueEntry.sort_key)))


def build_three(db: sessionmaker[Session]) -> tuple[int, int, int]:
    with db.begin() as s:
        out, far, close = patient(s), patient(s), patient(s)
        rx(s, out, "losartan", OUT, "RASA")
        rx(s, far, "losartan", FAR, "RASA")
        rx(s, close, "losartan", CLOSE, "RASA")
    with db.begin() as s:
        build_queues(s, NOW, rules=ONLY)
    return close.id, far.id, out.id


def test_out_of_reach_ranks_last_but_stays_in_the_queue(db: sessionmaker[Session]) -> None:
    close, far, out = build_three(db)
    order = queue_order(db)
    assert set(order) == {close, far, out} and order[-1] == out
    [task] = open_tasks(db)[out]
    assert task.priority_parts["reachable"] is False
    assert "(0.80 out of reach)" in explain(task.priority_parts)
    assert "can no longer reach 80%" in task.reason


def test_the_patient_closest_to_080_by_year_end_comes_first(db: sessionmaker[Session]) -> None:
    close, far, out = build_three(db)
    assert queue_order(db) == [close, far, out]


def test_a_fill_puts_the_patient_back_on_track_closes_the_task_and_credits_the_call(
    db: sessionmaker[Session],
) -> None:
    with db.begin() as s:
        p = patient(s)
        r = rx(s, p, "lisinopril", FAR, "RASA")
        s.add(User(username="ana", display_name="Ana", role="agent", password_hash="x"))
    with db.begin() as s:
        build_queues(s, NOW, rules=ONLY)
    call = NOW + timedelta(hours=1)
    with db.begin() as s:
        s.add(
            Attempt(
                uid="a1",
                patient_id=p.id,
                user_id=1,
                started_at=call,
                ended_at=call,
                disposition="completed",
            )
        )
        # Jul 2, 30 days: shifted after the supply on hand, runs to Aug 3.
        s.add(Fill(prescription_id=r.id, fill_date=date(2026, 7, 2), days_supply=30, quantity=30))
    with db.begin() as s:
        result = build_queues(s, NOW + timedelta(days=2), rules=ONLY)
    assert result.filled == 1
    with db() as s:
        task = s.scalars(select(Task).where(Task.patient_id == p.id)).one()
        assert (task.status, task.closed_reason) == ("closed", "filled")
        assert task.success_attempt_id == s.scalar(select(Attempt.id).where(Attempt.uid == "a1"))
    with db.begin() as s:
        again = build_queues(s, NOW + timedelta(days=2), rules=ONLY)
    assert (again.created, again.closed, again.updated) == (0, 0, 0)
    # Four weeks on, the new supply nears its end (Aug 4): a new lapse is a new task.
    with db.begin() as s:
        later = build_queues(s, NOW + timedelta(days=30), rules=ONLY)
    assert later.created == 1
    assert [t.subject for t in open_tasks(db)[p.id]] == ["pdc:RASA:2026-08-04"]


def test_default_rules_include_adherence_and_bundle_it_with_the_refill(
    db: sessionmaker[Session],
) -> None:
    assert adherence in queues.building.rules.DEFAULT_RULES
    with db.begin() as s:
        s.add(Campaign(pharmacy_id=1, kind="refill_reminder", name="Refills", script_id="refill"))
        p = patient(s)
        rx(s, p, "lisinopril", FAR, "RASA")
    with db.begin() as s:
        build_queues(s, NOW, rules=queues.building.rules.DEFAULT_RULES)
    subjects = [t.subject.split(":")[0] for t in open_tasks(db)[p.id]]
    assert subjects == ["pdc", "rx"]
    assert queue_order(db) == [p.id]  # one call for both


def test_a_plain_build_runs_the_adherence_rule() -> None:
    assert adherence in queues.building.build.default_rules()
