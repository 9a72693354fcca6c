"""Retries per disposition, on both databases: no answer again after N hours and at most M
unanswered attempts, busy again after K minutes; spent attempts close the work with a final reason."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.claims.claiming import claim_next
from queues.outcomes import Outcome, Recorded, record_outcome
from queues.settings import QueueSettings
from queues.store.db import transaction
from queues.store.models import Campaign, QueueEntry, Task
from tests.queues.test_admission import EVENING, add_agent, add_patient, add_pharmacy

SETTINGS = QueueSettings(no_answer_retry_hours=6, no_answer_max_attempts=2, busy_retry_minutes=20)


def call(
    sessions: sessionmaker[Session], agent: int, pharmacy: int, disposition: str, at: datetime
) -> Recorded:
    with transaction(sessions) as s:
        # The rules are tested elsewhere: here only the retry arithmetic.
        got = claim_next(
            s,
            user_id=agent,
            pharmacy_ids=[pharmacy],
            now=at,
            lease_seconds=300,
            admit=None,
        )
        assert got is not None
        return record_outcome(
            s,
            Outcome(
                uid=str(uuid.uuid4()),
                patient_id=got.patient_id,
                lease_token=got.lease_token,
                user_id=agent,
                disposition=disposition,
                started_at=at,
                ended_at=at,
                call_result=disposition,
            ),
            at,
            SETTINGS,
        )


def setup(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with transaction(sessions) as s:
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX")
        pid = add_patient(s, tx, 1, zip_code="75201", state="TX", numbers=("+12145550100",))
        return tx, pid, add_agent(s)


def test_no_answer_comes_back_after_n_hours(sessions: sessionmaker[Session]) -> None:
    tx, _, agent = setup(sessions)
    first = call(sessions, agent, tx, "no_answer", EVENING)
    assert not first.patient_closed
    assert first.next_available_at == EVENING + timedelta(hours=6)


def test_busy_comes_back_after_k_minutes(sessions: sessionmaker[Session]) -> None:
    tx, _, agent = setup(sessions)
    busy = call(sessions, agent, tx, "busy", EVENING)
    assert busy.next_available_at == EVENING + timedelta(minutes=20)


def test_unanswered_attempts_spent_close_the_work_with_a_final_reason(
    sessions: sessionmaker[Session],
) -> None:
    tx, pid, agent = setup(sessions)
    call(sessions, agent, tx, "no_answer", EVENING)
    last = call(sessions, agent, tx, "no_answer", EVENING + timedelta(days=1))
    assert last.patient_closed
    with sessions() as s:
        assert s.get_one(QueueEntry, pid).status == "done"
        reasons = set(s.scalars(select(Task.closed_reason).where(Task.patient_id == pid)))
    assert reasons == {"no_answer_exhausted"}


def test_a_busy_line_does_not_use_up_the_unanswered_attempts(
    sessions: sessionmaker[Session],
) -> None:
    tx, pid, agent = setup(sessions)
    call(sessions, agent, tx, "no_answer", EVENING)
    call(sessions, agent, tx, "busy", EVENING + timedelta(days=1))
    # Third attempt overall: max_attempts (3) closes the work whatever the disposition.
    third = call(sessions, agent, tx, "busy", EVENING + timedelta(days=2))
    assert third.patient_closed
    with sessions() as s:
        reasons = set(s.scalars(select(Task.closed_reason).where(Task.patient_id == pid)))
    assert reasons == {"attempts_exhausted"}


def test_each_program_stops_at_its_own_campaign_attempt_limit(
    sessions: sessionmaker[Session],
) -> None:
    """A one-try campaign's task closes after one call; the patient's other program goes on."""
    tx, pid, agent = setup(sessions)
    with transaction(sessions) as s:
        once = Campaign(
            pharmacy_id=tx,
            kind="vaccine",
            name="Flu shot reminder",
            script_id="vaccine",
            attempt_limit=1,
        )
        s.add(once)
        s.flush()
        s.add(
            Task(
                patient_id=pid,
                campaign_id=once.id,
                subject="vaccine:influenza",
                reason="Seasonal influenza vaccine due",
                created_at=EVENING - timedelta(days=1),
            )
        )
    first = call(sessions, agent, tx, "busy", EVENING)
    assert not first.patient_closed
    with sessions() as s:
        status = dict(
            s.execute(select(Task.subject, Task.closed_reason).where(Task.patient_id == pid)).all()
        )
        assert s.get_one(QueueEntry, pid).status == "open"
    assert status == {f"rx:{pid}": None, "vaccine:influenza": "attempts_exhausted"}
