"""Claiming with the calling rules on, on SQLite and PostgreSQL: a patient the rules forbid now is
passed over (with the reason and the time they open stored), the next callable one is claimed, the
dial-time check refuses what changed since, and the empty queue says why in numbers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from queues.claims.claiming import Claim, check_at_dial, claim_next
from queues.errors import NotCallable
from queues.floor.stats import due_breakdown, queue_stats
from queues.settings import QueueSettings
from queues.store.db import transaction
from queues.store.models import (
    Attempt,
    Campaign,
    Patient,
    Pharmacy,
    Phone,
    QueueEntry,
    Task,
    User,
)

# Wednesday 2026-12-02, 19:30 in Chicago, 20:30 in Miami: Texas is open, Florida (08-20) is not.
EVENING = datetime(2026, 12, 3, 1, 30, tzinfo=UTC)


def add_pharmacy(
    s: Session, code: str, tz: str, state: str, limits: dict[str, object] | None = None
) -> int:
    ph = Pharmacy(
        code=code,
        name=code,
        caller_id="+12145550100",
        callback_number="+12145550101",
        timezone=tz,
        state=state,
        opens_at=time(7),
        closes_at=time(22),
        calling_limits=limits,
    )
    s.add(ph)
    s.flush()
    return ph.id


def add_agent(s: Session, name: str = "amy") -> int:
    user = User(
        username=f"{name}-{uuid.uuid4().hex[:6]}",
        display_name=name,
        role="agent",
        password_hash="-",
    )
    s.add(user)
    s.flush()
    return user.id


def add_patient(
    s: Session,
    pharmacy_id: int,
    sort_key: float,
    *,
    zip_code: str,
    state: str,
    numbers: tuple[str, ...],
    available_at: datetime = EVENING - timedelta(hours=1),
) -> int:
    patient = Patient(
        pharmacy_id=pharmacy_id,
        mrn=uuid.uuid4().hex[:10],
        first_name="Test",
        last_name="Patient",
        birth_date=date(1950, 1, 1),
        zip_code=zip_code,
        state=state,
    )
    s.add(patient)
    s.flush()
    for rank, number in enumerate(numbers):
        s.add(Phone(patient_id=patient.id, number=number, kind="mobile", rank=rank))
    camp = Campaign(
        pharmacy_id=pharmacy_id, kind="refill_reminder", name="Refills", script_id="refill"
    )
    s.add(camp)
    s.flush()
    s.add(
        Task(
            patient_id=patient.id,
            campaign_id=camp.id,
            subject=f"rx:{patient.id}",
            reason="Refill due",
            created_at=EVENING - timedelta(days=2),
        )
    )
    s.add(
        QueueEntry(
            patient_id=patient.id,
            pharmacy_id=pharmacy_id,
            sort_key=sort_key,
            available_at=available_at,
        )
    )
    s.flush()
    return patient.id


def add_dial(
    s: Session,
    patient_id: int,
    user_id: int,
    at: datetime,
    call_result: str,
    phone_number: str | None = None,
) -> None:
    """A finished attempt the agent dispositioned as no answer."""
    s.add(
        Attempt(
            uid=str(uuid.uuid4()),
            patient_id=patient_id,
            user_id=user_id,
            phone_number=phone_number,
            call_result=call_result,
            started_at=at,
            ended_at=at,
            disposition="no_answer",
        )
    )


def claim(
    sessions: sessionmaker[Session], user_id: int, pharmacy_ids: list[int], now: datetime = EVENING
) -> Claim | None:
    with transaction(sessions) as s:
        return claim_next(s, user_id=user_id, pharmacy_ids=pharmacy_ids, now=now, lease_seconds=300)


def entry(sessions: sessionmaker[Session], patient_id: int) -> QueueEntry:
    with sessions() as s:
        return s.get_one(QueueEntry, patient_id)


def test_claim_passes_over_a_patient_outside_their_window_and_takes_the_next(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        fl = add_pharmacy(s, "FL1", "America/New_York", "FL")
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX")
        miami = add_patient(s, fl, 1, zip_code="33101", state="FL", numbers=("+13055550100",))
        dallas = add_patient(s, tx, 2, zip_code="75201", state="TX", numbers=("+12145550100",))
        agent = add_agent(s)
    got = claim(sessions, agent, [fl, tx])
    assert got is not None and got.patient_id == dallas
    skipped = entry(sessions, miami)
    assert skipped.blocked_reason == "state_window_FL"
    assert skipped.available_at == datetime(2026, 12, 3, 13, 0, tzinfo=UTC)  # 08:00 in Miami
    assert skipped.holder_id is None
    assert entry(sessions, dallas).blocked_reason is None


def test_a_texan_with_a_florida_cell_waits_for_florida_hours(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX")
        ported = add_patient(
            s, tx, 1, zip_code="75201", state="TX", numbers=("+12145550100", "+13055550100")
        )
        agent = add_agent(s)
    assert claim(sessions, agent, [tx]) is None
    assert entry(sessions, ported).blocked_reason == "state_window_FL"


def test_a_patient_at_their_daily_cap_is_passed_over_until_it_lifts(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX")
        pid = add_patient(s, tx, 1, zip_code="75201", state="TX", numbers=("+12145550100",))
        agent = add_agent(s)
        called = EVENING - timedelta(hours=3)
        add_dial(s, pid, agent, called, "no_answer", "+12145550100")
    assert claim(sessions, agent, [tx]) is None
    held_back = entry(sessions, pid)
    assert held_back.blocked_reason == "daily_cap"
    assert held_back.available_at == called + timedelta(hours=24)


def test_a_pharmacy_that_tightens_its_window_is_obeyed(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX", {"calling_window_end": "19:00"})
        pid = add_patient(s, tx, 1, zip_code="75201", state="TX", numbers=("+12145550100",))
        agent = add_agent(s)
    assert claim(sessions, agent, [tx]) is None
    assert entry(sessions, pid).blocked_reason == "calling_window"


def test_a_do_not_call_patient_is_never_claimed(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX")
        pid = add_patient(s, tx, 1, zip_code="75201", state="TX", numbers=("+12145550100",))
        s.execute(update(Patient).where(Patient.id == pid).values(do_not_call=True))
        agent = add_agent(s)
    assert claim(sessions, agent, [tx]) is None
    assert entry(sessions, pid).blocked_reason == "dnc_patient"


def test_the_dial_time_check_refuses_what_changed_after_the_claim(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX")
        pid = add_patient(
            s, tx, 1, zip_code="75201", state="TX", numbers=("+12145550100", "+12145550199")
        )
        agent = add_agent(s)
    got = claim(sessions, agent, [tx])
    assert got is not None
    with transaction(sessions) as s:
        check_at_dial(s, pid, "+12145550100", EVENING)  # fine now
        s.execute(update(Phone).where(Phone.number == "+12145550100").values(do_not_call=True))
    with transaction(sessions) as s:
        with pytest.raises(NotCallable) as refused:
            check_at_dial(s, pid, "+12145550100", EVENING)
        assert refused.value.code == "dnc_number"
        check_at_dial(s, pid, "+12145550199", EVENING)
        # The agent read for 90 minutes: 21:00 in Dallas, the federal window is closed.
        with pytest.raises(NotCallable) as late:
            check_at_dial(s, pid, "+12145550199", EVENING + timedelta(minutes=90))
        assert late.value.code == "federal_window"
        assert late.value.next_open_at == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def test_an_empty_queue_says_why_in_numbers(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        fl = add_pharmacy(s, "FL1", "America/New_York", "FL")
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX")
        for k in range(3):
            add_patient(s, fl, k, zip_code="33101", state="FL", numbers=(f"+1305555010{k}",))
        capped = add_patient(s, tx, 10, zip_code="75201", state="TX", numbers=("+12145550100",))
        add_dial(s, capped, add_agent(s, "bob"), EVENING - timedelta(hours=2), "connected")
        add_patient(s, tx, 11, zip_code="75201", state="TX", numbers=("+12145550111",))
        amy, other = add_agent(s, "amy"), add_agent(s, "cat")
    taken = claim(sessions, other, [fl, tx])
    assert taken is not None
    assert claim(sessions, amy, [fl, tx]) is None
    with sessions() as s:
        why = due_breakdown(s, EVENING, pharmacy_ids=[fl, tx], user_id=amy)
        stats = queue_stats(s, EVENING, QueueSettings())
    assert why.summary() == (
        "5 patients due: 3 outside their calling window until Thu 08:00 EST, "
        "1 at their daily cap until Thu 17:30 CST, 1 with another agent. "
        "The next one becomes callable at Thu 08:00 EST."
    )
    assert stats.as_json()["due"]["groups"][0] == {
        "kind": "calling_window",
        "count": 3,
        "until": "2026-12-03T08:00:00-05:00",
        "label": "outside their calling window",
    }
    assert stats.as_json()["tasks_claimed"] == 1  # the existing keys are kept


def test_queue_stats_counts_a_held_patient_queued_and_claimable_once_its_lease_ran_out(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        tx = add_pharmacy(s, "TX1", "America/Chicago", "TX")
        for k in range(2):
            add_patient(s, tx, k, zip_code="75201", state="TX", numbers=(f"+1214555010{k}",))
        amy = add_agent(s, "amy")
    taken = claim(sessions, amy, [tx])  # a console then killed: its lease runs out, unreleased
    assert taken is not None
    with sessions() as s:
        held = queue_stats(s, EVENING, QueueSettings())
        lapsed = queue_stats(s, taken.lease_expires_at + timedelta(minutes=1), QueueSettings())
    assert (held.patients_queued, held.patients_claimable_now) == (2, 1)
    assert (lapsed.patients_queued, lapsed.patients_claimable_now) == (2, 2)


def test_a_passed_over_patient_comes_back_when_their_window_opens(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        fl = add_pharmacy(s, "FL1", "America/New_York", "FL")
        miami = add_patient(s, fl, 1, zip_code="33101", state="FL", numbers=("+13055550100",))
        amy, bob = add_agent(s, "amy"), add_agent(s, "bob")
    assert claim(sessions, amy, [fl]) is None
    opens = entry(sessions, miami).available_at
    assert opens == datetime(2026, 12, 3, 13, 0, tzinfo=UTC)  # 08:00 in Miami
    # A minute early it is still waiting; at 08:00 the next claim wakes and takes them.
    assert claim(sessions, bob, [fl], opens - timedelta(minutes=1)) is None
    got = claim(sessions, bob, [fl], opens)
    assert got is not None and got.patient_id == miami
    taken = entry(sessions, miami)
    assert (taken.holder_id, taken.blocked_reason) == (bob, None)
