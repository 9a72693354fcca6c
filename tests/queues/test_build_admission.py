"""A build writes each new queue entry with its calling-rule admission (queues.admitting), on SQLite
and PostgreSQL: the same admission the full pass over the queue (admit_entries) gives, so a claim
right after a build is one statement for exactly the patients the rules let through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from queues.admitting import admit_entries
from queues.building import build_queues
from queues.db import transaction
from queues.demo import seed_demo
from queues.models import Patient, Pharmacy, QueueEntry, User
from tests.queues.test_admission import add_dial

# Wednesday 2026-12-02 14:30 UTC: 09:30 in Miami, 08:30 in Houston, 07:30 in Phoenix — the demo's
# pharmacies open at 09:00, so only the Florida one is open.
EARLY = datetime(2026, 12, 2, 14, 30, tzinfo=UTC)


def _admissions(sessions: sessionmaker[Session]) -> dict[int, tuple[Any, ...]]:
    with sessions() as s:
        return {
            e.patient_id: (e.admitted_at, e.admitted_until, e.admitted_key)
            for e in s.scalars(select(QueueEntry))
        }


def test_new_entries_carry_the_admission_the_full_pass_gives(
    sessions: sessionmaker[Session],
) -> None:
    seed_demo(sessions, patients=240, seed=5, now=EARLY)
    with transaction(sessions) as s:
        agent = s.scalars(select(User).where(User.role == "agent")).first()
        assert agent is not None
        queued = list(s.scalars(select(QueueEntry.patient_id).order_by(QueueEntry.patient_id)))
        dialed_lately, dialed_long_ago = queued[::7], queued[3::11]
        for pid in dialed_lately:  # in the week the claim's full check reads: no admission
            add_dial(s, pid, agent.id, EARLY - timedelta(days=2), "no_answer")
        for pid in dialed_long_ago:
            add_dial(s, pid, agent.id, EARLY - timedelta(days=10), "no_answer")
        # Every entry goes, so the next build writes them all anew.
        s.execute(delete(QueueEntry))
    with transaction(sessions) as s:
        result = build_queues(s, EARLY)
    written = _admissions(sessions)
    assert sorted(written) == queued

    with transaction(sessions) as s:
        s.execute(
            update(QueueEntry).values(admitted_at=None, admitted_until=None, admitted_key=None)
        )
        assert admit_entries(s, EARLY) == result.admitted
    assert _admissions(sessions) == written

    admitted = {pid for pid, (_at, until, _key) in written.items() if until is not None}
    assert admitted.isdisjoint(dialed_lately)
    assert admitted & set(dialed_long_ago)
    with sessions() as s:
        zones = dict(
            s.execute(
                select(Patient.id, Pharmacy.timezone).join(
                    Pharmacy, Pharmacy.id == Patient.pharmacy_id
                )
            ).all()
        )
    # Open in New York, not yet elsewhere: the admissions follow each pharmacy's clock.
    assert {zones[pid] for pid in admitted} == {"America/New_York"}
