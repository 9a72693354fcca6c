"""Recording an outcome on both databases: once, whole, or not at all."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from queues.claims.claiming import Claim
from queues.errors import InvalidOutcome
from queues.outcomes import LINE_FAILED, ActionRequest, Outcome, record_outcome
from queues.store.db import transaction
from queues.store.models import Attempt, FollowUpAction, Pharmacy, QueueEntry, Task
from tests.conftest import NOW, add_pharmacy, add_queue
from tests.queues.test_claiming import add_agent, claim


def _world(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        add_queue(s, ph, 3)
        return add_agent(s, "ana", [ph]), add_agent(s, "ben", [ph])


def _outcome(c: Claim, user_id: int, **kw: object) -> Outcome:
    fields: dict[str, object] = dict(
        uid=str(uuid.uuid4()),
        patient_id=c.patient_id,
        lease_token=c.lease_token,
        user_id=user_id,
        disposition="completed",
        started_at=NOW,
        ended_at=NOW + timedelta(minutes=3),
        call_result="connected",
        notes="patient will pick up Friday",
    )
    fields.update(kw)
    return Outcome(**fields)  # type: ignore[arg-type]


def _attempts(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Attempt)) or 0


def test_a_disposition_on_a_lost_lease_is_stored_late_and_leaves_the_new_holder_alone(
    sessions: sessionmaker[Session],
) -> None:
    ana, ben = _world(sessions)
    mine = claim(sessions, ana, lease=60)
    assert mine is not None
    # Ana's console hangs past the lease; Ben gets the patient.
    later = NOW + timedelta(seconds=61)
    theirs = claim(sessions, ben, at=later)
    assert theirs is not None and theirs.patient_id == mine.patient_id
    with transaction(sessions) as s:
        recorded = record_outcome(s, _outcome(mine, ana), later)
    assert recorded.late and not recorded.patient_closed  # the patient is Ben's to close
    assert _attempts(sessions) == 1
    with sessions() as s:
        assert s.scalars(select(Attempt.late)).one() is True
        entry = s.get_one(QueueEntry, mine.patient_id)
        assert (entry.holder_id, entry.lease_token) == (ben, theirs.lease_token)


def test_the_same_save_twice_is_stored_once(sessions: sessionmaker[Session]) -> None:
    ana, _ = _world(sessions)
    c = claim(sessions, ana)
    assert c is not None
    outcome = _outcome(c, ana, actions=(ActionRequest("refill_request", None, {"note": "x"}),))
    with transaction(sessions) as s:
        first = record_outcome(s, outcome, NOW + timedelta(minutes=4))
    with transaction(sessions) as s:  # the console retries after a dropped connection
        second = record_outcome(s, outcome, NOW + timedelta(minutes=5))
    assert second.duplicate and second.attempt_id == first.attempt_id
    assert _attempts(sessions) == 1
    with sessions() as s:
        actions = s.scalars(select(FollowUpAction)).all()
        assert [(a.kind, a.attempt_id, a.status) for a in actions] == [
            ("refill_request", first.attempt_id, "pending")
        ]
        entry = s.get_one(QueueEntry, c.patient_id)
        assert entry.holder_id is None and entry.lease_token is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"disposition": ""}, "disposition"),
        ({"disposition": "callback_requested"}, "callback_at"),
        ({"notes": "x" * 5000}, "notes"),
        ({"actions": (ActionRequest("send_flowers"),)}, "actions"),
    ],
)
def test_a_form_missing_or_wrong_field_is_refused_by_name_and_the_lease_is_kept(
    sessions: sessionmaker[Session], changes: dict[str, object], field: str
) -> None:
    ana, _ = _world(sessions)
    c = claim(sessions, ana)
    assert c is not None
    with pytest.raises(InvalidOutcome) as bad, transaction(sessions) as s:
        record_outcome(s, _outcome(c, ana, **changes), NOW + timedelta(minutes=4))
    assert bad.value.field == field
    assert _attempts(sessions) == 0
    with sessions() as s:
        assert s.get_one(QueueEntry, c.patient_id).holder_id == ana


def test_a_line_failure_spends_no_attempt_or_cap_and_the_patient_is_back_in_minutes(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        (patient,) = add_queue(s, ph, 1)
        ana = add_agent(s, "ana", [ph])
    at = NOW
    # More line failures than the campaign's attempt limit (3) and the daily cap (1): none counts.
    for _ in range(4):
        c = claim(sessions, ana, at=at)
        assert c is not None and c.patient_id == patient
        failed = _outcome(
            c, ana, disposition=LINE_FAILED, call_result="failed", sip_status=503, notes=""
        )
        with transaction(sessions) as s:
            recorded = record_outcome(s, failed, at)
        assert not recorded.patient_closed
        assert recorded.next_available_at == at + timedelta(minutes=5)
        assert claim(sessions, ana, at=at + timedelta(minutes=1)) is None  # the short retry
        at += timedelta(minutes=6)
    with sessions() as s:
        assert [t.status for t in s.scalars(select(Task))] == ["open"]
        stored = s.scalars(select(Attempt)).all()
        assert {(a.disposition, a.call_result, a.sip_status) for a in stored} == {
            (LINE_FAILED, "failed", 503)
        }
    # The patient is still callable: a real no-answer now spends today's one attempt.
    c = claim(sessions, ana, at=at)
    assert c is not None and c.patient_id == patient
    with transaction(sessions) as s:
        record_outcome(s, _outcome(c, ana, disposition="no_answer", call_result="no_answer"), at)
    assert claim(sessions, ana, at=at + timedelta(minutes=6)) is None


def _no_sundays_or_holidays(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        for pharmacy in s.scalars(select(Pharmacy)):
            pharmacy.calling_limits = {"no_calls_on_sundays": True, "no_calls_on_holidays": True}


@pytest.mark.parametrize(
    ("local_at", "why", "next_open"),
    [
        # Wednesday 21:30 in Dallas: past federal hours (and the pharmacy's 20:00 close).
        (datetime(2026, 12, 2, 21, 30), "Wed 21:30", "Thu Dec 03 08:00 CST"),
        # A Sunday, when this pharmacy makes no calls.
        (datetime(2026, 12, 6, 11, 0), "no calls on Sundays", "Mon Dec 07 08:00 CST"),
        # Christmas Day, a legal holiday (and Texas keeps the day after: Saturday is closed too).
        (datetime(2026, 12, 25, 10, 0), "Christmas", "Mon Dec 28 08:00 CST"),
    ],
)
def test_a_callback_outside_the_patients_calling_window_is_refused_with_the_next_open_time(
    sessions: sessionmaker[Session], local_at: datetime, why: str, next_open: str
) -> None:
    ana, _ = _world(sessions)
    _no_sundays_or_holidays(sessions)
    c = claim(sessions, ana)
    assert c is not None
    at = local_at.replace(tzinfo=ZoneInfo("America/Chicago"))
    outcome = _outcome(c, ana, disposition="callback_requested", callback_at=at)
    with pytest.raises(InvalidOutcome) as bad, transaction(sessions) as s:
        record_outcome(s, outcome, NOW + timedelta(minutes=4))
    assert bad.value.field == "callback_at"
    assert why in bad.value.why, bad.value.why
    assert f"The next open time is {next_open}." in bad.value.why, bad.value.why
    assert _attempts(sessions) == 0
    # Inside the window, the same callback is taken.
    inside = datetime(2026, 12, 3, 14, 30, tzinfo=ZoneInfo("America/Chicago"))
    with transaction(sessions) as s:
        record_outcome(s, dataclasses.replace(outcome, callback_at=inside), NOW)
    assert _attempts(sessions) == 1


def test_the_next_open_callback_times_are_in_the_patients_time_and_skip_closed_days(
    sessions: sessionmaker[Session],
) -> None:
    from queues.compliance.callbacks import calling_windows

    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        (patient,) = add_queue(s, ph, 1)
    _no_sundays_or_holidays(sessions)
    with sessions() as s:
        windows = calling_windows(s, patient)
    assert windows.zone == "America/Chicago"
    friday_evening = datetime(2026, 12, 4, 18, 10, tzinfo=ZoneInfo("America/Chicago"))
    slots = windows.slots(friday_evening)
    shown = [f"{at:%a %H:%M %Z}" for at in slots]
    # Friday 19:00 (the pharmacy closes at 20:00), then each next open day from 10:00: no Sunday.
    assert shown == [
        "Fri 19:00 CST",
        "Sat 10:00 CST",
        "Mon 10:00 CST",
        "Tue 10:00 CST",
        "Wed 10:00 CST",
    ], shown
    assert all(windows.is_open(at) and at > friday_evening for at in slots)
