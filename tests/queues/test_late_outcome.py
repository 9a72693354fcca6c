"""A wrap-up saved after its claim was gone is stored as the call it was, marked late — on both
databases: it counts against the calling caps and on the floor and in the report, its follow-up
actions go out, and the queue entry is left to whoever holds the patient now."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from queues.claims.claiming import Claim
from queues.compliance import patient_verdict
from queues.floor.monitor import FloorMonitor
from queues.outcomes import ActionRequest, Outcome, record_outcome
from queues.reports import Requester, export_report
from queues.store.db import transaction
from queues.store.models import (
    Attempt,
    AuditEvent,
    Callback,
    FollowUpAction,
    Patient,
    QueueEntry,
    Task,
)
from tests.conftest import NOW, add_pharmacy, add_queue
from tests.queues.test_claiming import add_agent, claim

TODAY = date(2026, 12, 2)  # NOW is 10:00 in Chicago


def _world(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        add_queue(s, ph, 3)
        return ph, add_agent(s, "ana", [ph]), add_agent(s, "ben", [ph])


def _call(c: Claim, user_id: int, disposition: str, **kw: object) -> Outcome:
    fields: dict[str, object] = dict(
        uid=str(uuid.uuid4()),
        patient_id=c.patient_id,
        lease_token=c.lease_token,
        user_id=user_id,
        disposition=disposition,
        started_at=NOW,
        connected_at=NOW + timedelta(seconds=20),
        ended_at=NOW + timedelta(minutes=3),
        call_result="connected",
        phone_number="+12145550001",
        notes="asked for the refill",
        actions=(ActionRequest("refill_request", None, {"note": "90-day"}),),
    )
    fields.update(kw)
    return Outcome(**fields)  # type: ignore[arg-type]


def _release(sessions: sessionmaker[Session], patient_id: int) -> None:
    """What a supervisor's release does to the entry (queues.floor.controls.release_lease)."""
    with transaction(sessions) as s:
        entry = s.get_one(QueueEntry, patient_id)
        entry.holder_id = entry.lease_token = entry.lease_expires_at = entry.claimed_at = None
        entry.available_at = NOW


def test_a_save_after_a_supervisor_released_the_patient_is_the_call_it_was(
    sessions: sessionmaker[Session],
) -> None:
    ph, ana, _ = _world(sessions)
    mine = claim(sessions, ana)
    assert mine is not None
    with sessions() as s:
        assert patient_verdict(s, mine.patient_id, NOW).callable
    _release(sessions, mine.patient_id)
    later = NOW + timedelta(minutes=4)
    with transaction(sessions) as s:
        recorded = record_outcome(s, _call(mine, ana, "voicemail"), later)
    assert recorded.late and not recorded.duplicate
    with sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.late, attempt.disposition, attempt.notes) == (
            True,
            "voicemail",
            "asked for the refill",
        )
        assert attempt.task_ids["open"]  # the tasks it was about, as for a save on time
        # Its follow-up action goes out to the pharmacy.
        actions = s.scalars(select(FollowUpAction)).all()
        assert [(a.kind, a.attempt_id, a.status) for a in actions] == [
            ("refill_request", attempt.id, "pending")
        ]
        # It counts against the caps: one call today is the daily cap.
        verdict = patient_verdict(s, mine.patient_id, later)
        assert not verdict.callable
        assert any("cap" in code for code in verdict.codes), verdict.codes
        # Nobody held the patient: the retry waits out of the claimable index, as on time.
        entry = s.get_one(QueueEntry, mine.patient_id)
        assert entry.holder_id is None and entry.claimed_at is not None
        assert entry.available_at.replace(tzinfo=None) > later.replace(tzinfo=None)
        audit = s.scalars(select(AuditEvent).where(AuditEvent.action == "disposition")).one()
        assert audit.detail == {"attempt_id": attempt.id, "disposition": "voicemail", "late": True}
        # On the floor's Today tab and in the report, it is a call.
        today = FloorMonitor((ph,)).refresh(s, later).outcomes
    assert today.attempts == 1 and today.patients_called == 1
    with transaction(sessions) as s:
        made = export_report(
            s, Requester.operator("test"), "TX1", TODAY, TODAY, "csv", later, paper="letter"
        ).content
    rows = list(csv.reader(io.StringIO(made.decode())))
    calls = {(r[1], r[3]): r[4] for r in rows[1:] if r[0] == "TX1" and r[2] == ""}
    assert calls[("summary", "attempts")] == "1"


def test_a_save_after_another_agent_took_the_patient_leaves_their_claim_alone(
    sessions: sessionmaker[Session],
) -> None:
    _, ana, ben = _world(sessions)
    mine = claim(sessions, ana, lease=60)
    assert mine is not None
    later = NOW + timedelta(seconds=61)
    theirs = claim(sessions, ben, at=later)
    assert theirs is not None and theirs.patient_id == mine.patient_id
    with transaction(sessions) as s:
        recorded = record_outcome(s, _call(mine, ana, "do_not_call"), later)
    assert recorded.late and not recorded.patient_closed
    with sessions() as s:
        # The opt-out is honored at once: Ben's dial check refuses the call.
        assert s.get_one(Patient, mine.patient_id).do_not_call is True
        entry = s.get_one(QueueEntry, mine.patient_id)
        assert (entry.holder_id, entry.lease_token) == (ben, theirs.lease_token)
        # The tasks are Ben's wrap-up's to close.
        open_tasks = s.scalar(
            select(func.count())
            .select_from(Task)
            .where(Task.patient_id == mine.patient_id, Task.status == "open")
        )
        assert open_tasks == 1
        assert s.scalars(select(Attempt.late)).one() is True
        assert s.scalar(select(func.count()).select_from(FollowUpAction)) == 1


def test_a_callback_asked_for_on_a_late_save_is_kept(sessions: sessionmaker[Session]) -> None:
    _, ana, ben = _world(sessions)
    mine = claim(sessions, ana, lease=60)
    assert mine is not None
    later = NOW + timedelta(seconds=61)
    assert claim(sessions, ben, at=later) is not None
    at = NOW + timedelta(days=1)  # Thursday 10:00 in Chicago: inside the window
    with transaction(sessions) as s:
        record_outcome(s, _call(mine, ana, "callback_requested", callback_at=at), later)
    with sessions() as s:
        callback = s.scalars(select(Callback)).one()
        assert (callback.owner_id, callback.status) == (ana, "pending")


def test_a_late_save_sent_twice_is_stored_once(sessions: sessionmaker[Session]) -> None:
    _, ana, _ = _world(sessions)
    mine = claim(sessions, ana)
    assert mine is not None
    _release(sessions, mine.patient_id)
    outcome = _call(mine, ana, "completed")
    with transaction(sessions) as s:
        first = record_outcome(s, outcome, NOW + timedelta(minutes=4))
    with transaction(sessions) as s:  # the answer was lost; the console sends it again
        second = record_outcome(s, outcome, NOW + timedelta(minutes=5))
    assert first.late and second.duplicate and second.attempt_id == first.attempt_id
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == 1
        assert s.scalar(select(func.count()).select_from(FollowUpAction)) == 1
