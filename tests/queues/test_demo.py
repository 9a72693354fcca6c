"""The demo database: deterministic, varied enough to exercise every campaign, and careful with
databases it did not build."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from demo.world import DemoAlreadyThere, default_practice_start, seed_demo
from queues.auth import authenticate
from queues.clock import PracticeClock, clock_for
from queues.errors import OutreachError
from queues.store.db import make_engine, session_factory, upgrade
from queues.store.models import Campaign, Fill, Patient, Pharmacy, Phone, Prescription, Task
from tests.conftest import migrated_if_new

START = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in Miami


def _sessions(url: str) -> sessionmaker[Session]:
    engine = make_engine(migrated_if_new(url))
    upgrade(engine)  # the PostgreSQL database is a copy at the newest already: a read
    return session_factory(engine)


def _digest(session: Session) -> str:
    h = hashlib.sha256()
    for row in session.execute(
        select(Patient.mrn, Patient.first_name, Patient.last_name, Patient.birth_date).order_by(
            Patient.mrn
        )
    ):
        h.update(repr(tuple(row)).encode())
    for row in session.execute(
        select(Patient.mrn, Prescription.ingredient, Fill.fill_date, Fill.days_supply)
        .join(Prescription, Prescription.patient_id == Patient.id)
        .join(Fill, Fill.prescription_id == Prescription.id)
        .order_by(Patient.mrn, Prescription.ingredient, Fill.fill_date)
    ):
        h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def test_demo_has_what_the_issue_lists(db_url: str) -> None:
    sessions = _sessions(db_url)
    summary = seed_demo(sessions, patients=500, seed=11, now=START)
    with sessions() as s:
        zones = set(s.scalars(select(Pharmacy.timezone)))
        states = set(s.scalars(select(Pharmacy.state)))
        assert len(zones) >= 3 and len(states) >= 3
        assert s.scalar(select(func.count()).select_from(Patient)) == 500
        assert s.scalar(select(func.count()).where(Patient.language == "es")) >= 25
        assert s.scalar(select(func.count()).where(Patient.caregiver_name.is_not(None))) >= 20
        assert s.scalar(select(func.count()).where(Patient.do_not_call.is_(True))) >= 1
        assert s.scalar(select(func.count()).where(Phone.wrong_number.is_(True))) >= 1
        # Histories with gaps: some consecutive fills more than a week late.
        late = 0
        for rx_id in s.scalars(select(Prescription.id).where(Prescription.chronic.is_(True))):
            fills = s.execute(
                select(Fill.fill_date, Fill.days_supply)
                .where(Fill.prescription_id == rx_id)
                .order_by(Fill.fill_date)
            ).all()
            late += sum(1 for a, b in itertools.pairwise(fills) if (b[0] - a[0]).days > a[1] + 7)
        assert late >= 50
        kinds = set(
            s.scalars(select(Campaign.kind).join(Task, Task.campaign_id == Campaign.id).distinct())
        )
        for kind in (
            "refill_reminder",
            "med_sync_enrollment",
            "pre_sync_check",
            "post_dispense",
            "adherence",
            "vaccine",
            "diabetes_education",
            "smoking_cessation",
        ):
            assert kind in kinds
        # The demo log-ins work and the database runs on the practice clock.
        assert authenticate(s, "agent", "agent-demo-1").role == "agent"
        assert authenticate(s, "supervisor", "supervisor-demo-1").role == "supervisor"
        clock = clock_for(s)
        assert isinstance(clock, PracticeClock) and clock.start == START
    assert summary.patients == 500 and summary.tasks_open > 0
    assert "agent / agent-demo-1" in summary.describe()


def test_same_seed_same_database_other_seed_other_database(tmp_path: Path) -> None:
    digests = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        sessions = _sessions(f"sqlite:///{tmp_path / name}.db")
        seed_demo(sessions, patients=60, seed=seed, now=START)
        with sessions() as s:
            digests.append(_digest(s))
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_existing_demo_is_kept_unless_reset(tmp_path: Path) -> None:
    sessions = _sessions(f"sqlite:///{tmp_path / 'demo.db'}")
    seed_demo(sessions, patients=30, seed=1, now=START)
    with pytest.raises(DemoAlreadyThere):
        seed_demo(sessions, patients=40, seed=2, now=START)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Patient)) == 30
    seed_demo(sessions, patients=40, seed=2, now=START, reset=True)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Patient)) == 40


def test_demo_refuses_a_database_with_real_pharmacies(tmp_path: Path) -> None:
    from tests.conftest import add_pharmacy

    sessions = _sessions(f"sqlite:///{tmp_path / 'real.db'}")
    with sessions.begin() as s:
        add_pharmacy(s)
    with pytest.raises(OutreachError, match="real pharmacies"):
        seed_demo(sessions, patients=10, seed=1, now=START, reset=True)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Pharmacy)) == 1


@pytest.mark.parametrize(
    ("real_now", "expected"),
    [
        (datetime(2026, 11, 30, 4, 0, tzinfo=UTC), datetime(2026, 11, 30, 15, 0, tzinfo=UTC)),
        (datetime(2026, 12, 4, 16, 0, tzinfo=UTC), datetime(2026, 12, 7, 15, 0, tzinfo=UTC)),
        (datetime(2026, 12, 5, 12, 0, tzinfo=UTC), datetime(2026, 12, 7, 15, 0, tzinfo=UTC)),
    ],
)
def test_practice_clock_defaults_to_next_weekday_ten(
    real_now: datetime, expected: datetime
) -> None:
    assert default_practice_start(real_now) == expected


def test_reopened_demo_resumes_after_the_last_saved_call(tmp_path: Path) -> None:
    from datetime import timedelta

    from queues.claims.claiming import claim_next
    from queues.outcomes import Outcome, record_outcome
    from queues.store.db import transaction
    from queues.store.models import User

    sessions = _sessions(f"sqlite:///{tmp_path / 'demo.db'}")
    seed_demo(sessions, patients=40, seed=5, now=START)
    later = START + timedelta(hours=2)
    with transaction(sessions) as s:
        agent = s.scalars(select(User).where(User.username == "agent")).one()
        ids = [p.id for p in agent.pharmacies]
        c = claim_next(s, user_id=agent.id, pharmacy_ids=ids, now=later, lease_seconds=300)
        assert c is not None
        outcome = Outcome(
            uid="u-1",
            patient_id=c.patient_id,
            lease_token=c.lease_token,
            user_id=agent.id,
            disposition="no_answer",
            started_at=later,
            ended_at=later,
        )
        record_outcome(s, outcome, later)
    with sessions() as s:
        assert clock_for(s).now() >= later


def test_a_patient_a_call_closed_stays_out_of_the_count_across_a_pause_and_resume(
    tmp_path: Path,
) -> None:
    """FL-MIA's patients moved 156 → 159 across a pause and resume with no call in between: the
    resume's rebuild reopened the queue entry of every patient a call had closed that day (their
    due tasks were done, yet counted as queued). Fails with that build."""
    from datetime import timedelta

    from queues.auth import signed_in
    from queues.claims.claiming import claim_next
    from queues.floor import controls
    from queues.floor.monitor import pharmacy_patients
    from queues.outcomes import Outcome, record_outcome
    from queues.store.db import transaction
    from queues.store.models import QueueEntry, User

    sessions = _sessions(f"sqlite:///{tmp_path / 'demo.db'}")
    seed_demo(sessions, patients=120, seed=7, now=START)
    now = START + timedelta(minutes=5)
    with sessions() as s:
        agent = signed_in(s.scalars(select(User).where(User.username == "agent")).one())
        boss = signed_in(s.scalars(select(User).where(User.username == "supervisor")).one())
    closed = []
    for disposition in ("completed", "refused", "no_answer"):
        with transaction(sessions) as s:
            c = claim_next(
                s, user_id=agent.id, pharmacy_ids=agent.pharmacy_ids, now=now, lease_seconds=300
            )
            assert c is not None
            record_outcome(
                s,
                Outcome(
                    uid=f"u-{disposition}",
                    patient_id=c.patient_id,
                    lease_token=c.lease_token,
                    user_id=agent.id,
                    disposition=disposition,
                    started_at=now,
                    ended_at=now + timedelta(minutes=2),
                    call_result="connected" if disposition != "no_answer" else "no_answer",
                ),
                now + timedelta(minutes=3),
            )
            if disposition != "no_answer":
                closed.append(c.patient_id)
    later = now + timedelta(minutes=10)
    with sessions() as s:
        before = pharmacy_patients(s, agent.pharmacy_ids)
        campaigns = list(s.scalars(select(Campaign.id).where(Campaign.kind == "refill_reminder")))
    for campaign in campaigns:
        for active in (False, True):
            with transaction(sessions) as s:
                controls.set_campaign_active(s, boss, campaign, active, later)
        with sessions() as s:
            assert pharmacy_patients(s, agent.pharmacy_ids) == before
            statuses = {
                e.status
                for e in s.scalars(select(QueueEntry).where(QueueEntry.patient_id.in_(closed)))
            }
            assert statuses == {"done"}


def _history_digest(session: Session) -> str:
    from queues.store.models import Attempt, FollowUpAction

    h = hashlib.sha256()
    for row in session.execute(
        select(
            Attempt.uid,
            Attempt.patient_id,
            Attempt.started_at,
            Attempt.disposition,
            Attempt.answers,
        ).order_by(Attempt.uid)
    ):
        h.update(repr(tuple(row)).encode())
    for row in session.execute(
        select(
            FollowUpAction.idempotency_key, FollowUpAction.kind, FollowUpAction.prescription_id
        ).order_by(FollowUpAction.idempotency_key)
    ):
        h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def test_the_demos_past_calls_are_the_same_per_seed_and_cover_every_outcome(
    tmp_path: Path,
) -> None:
    """Three months of calls: every disposition the database knows, script answers, follow-up
    actions waiting for the outbox, none outside the calling rules, none in the last week."""
    from datetime import timedelta

    from queues.reports import Requester, program_report
    from queues.store.models import Attempt, DispositionCode, FollowUpAction

    digests = []
    for n in (1, 2):
        sessions = _sessions(f"sqlite:///{tmp_path / f'h{n}.db'}")
        summary = seed_demo(sessions, patients=200, seed=3, now=START, history_days=90)
        with sessions() as s:
            digests.append(_history_digest(s))
    assert digests[0] == digests[1]
    assert summary.past_calls > 200 and summary.past_actions > 20
    with sessions() as s:
        codes = set(s.scalars(select(DispositionCode.code)))
        used = set(s.scalars(select(Attempt.disposition).distinct()))
        assert used == codes
        first, last = s.execute(
            select(func.min(Attempt.started_at), func.max(Attempt.started_at))
        ).one()
        assert START - timedelta(days=91) <= first.replace(tzinfo=UTC)
        assert last.replace(tzinfo=UTC) < START - timedelta(days=7)
        answered = s.scalar(
            select(func.count()).select_from(Attempt).where(Attempt.disposition == "completed")
        )
        assert answered and all(
            a for a in s.scalars(select(Attempt.answers).where(Attempt.disposition == "completed"))
        )
        kinds = set(s.scalars(select(FollowUpAction.kind).distinct()))
        assert {"refill_request", "pharmacist_escalation", "med_sync_enrollment"} <= kinds
        assert set(s.scalars(select(FollowUpAction.status).distinct())) == {"pending"}
        report = program_report(
            s,
            Requester.operator("test"),
            "all",
            (START - timedelta(days=91)).date(),
            (START - timedelta(days=1)).date(),
            START,
        )
    assert sum(sec.attempts for sec in report.sections) > 0
    assert [sec.policy.outside for sec in report.sections] == [0, 0, 0]


def test_the_demo_without_history_has_no_past_calls(tmp_path: Path) -> None:
    from queues.store.models import Attempt

    sessions = _sessions(f"sqlite:///{tmp_path / 'demo.db'}")
    seed_demo(sessions, patients=30, seed=1, now=START)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == 0
