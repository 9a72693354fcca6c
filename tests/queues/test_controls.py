"""Supervisor controls on SQLite and PostgreSQL: each changes what agents get, each is audited, and
only a supervisor of the pharmacy may use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from queues.auth import SignedInUser, signed_in
from queues.claims.claiming import claim_next
from queues.errors import NotAllowed, OutreachError
from queues.floor import controls
from queues.store.db import transaction
from queues.store.models import (
    AgentState,
    AuditEvent,
    Callback,
    Campaign,
    Patient,
    Pharmacy,
    Phone,
    QueueEntry,
    Task,
    User,
)
from tests.world import World, make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(tmp_path, db_url, NOW, {"Alvarez": 1, "Brown": 3})
    yield w
    w.services.close()


def user(w: World, name: str) -> SignedInUser:
    with w.store.sessions() as s:
        return signed_in(s.scalars(select(User).where(User.username == name)).one())


def claim(sessions: sessionmaker[Session], who: SignedInUser, at: datetime = NOW) -> int | None:
    with transaction(sessions) as s:
        c = claim_next(s, user_id=who.id, pharmacy_ids=who.pharmacy_ids, now=at, lease_seconds=300)
        return c.patient_id if c else None


def audited(sessions: sessionmaker[Session], action: str) -> list[AuditEvent]:
    with sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def campaign_id(w: World) -> int:
    with w.store.sessions() as s:
        return s.scalars(select(Campaign.id)).one()


def test_paused_campaign_patients_stop_coming_and_come_back_on_resume(world: World) -> None:
    sessions, sue, ana = world.store.sessions, user(world, "sue"), user(world, "ana")
    with transaction(sessions) as s:
        controls.set_campaign_active(s, sue, campaign_id(world), False, NOW)
    assert claim(sessions, ana) is None
    with transaction(sessions) as s:
        controls.set_campaign_active(s, sue, campaign_id(world), True, NOW)
    assert claim(sessions, ana) == world.patients["Alvarez"]
    assert [e.user_id for e in audited(sessions, "campaign_paused")] == [sue.id]
    assert [e.user_id for e in audited(sessions, "campaign_resumed")] == [sue.id]


def test_weight_change_is_kept_and_audited_and_bounded(world: World) -> None:
    sessions, sue = world.store.sessions, user(world, "sue")
    with transaction(sessions) as s:
        controls.set_campaign_weight(s, sue, campaign_id(world), 2.5, NOW)
    with sessions() as s:
        assert s.get_one(Campaign, campaign_id(world)).weight == 2.5
        parts = s.scalars(select(Task.priority_parts).where(Task.status == "open")).all()
        assert {p.get("program_weight") for p in parts} == {2.5}
    (event,) = audited(sessions, "campaign_weight")
    assert event.detail == {"campaign_id": campaign_id(world), "from": 1.0, "to": 2.5}
    with pytest.raises(OutreachError, match="from 0 to 10"), transaction(sessions) as s:
        controls.set_campaign_weight(s, sue, campaign_id(world), 11, NOW)


def test_released_lease_goes_back_to_the_queue_for_the_next_agent(world: World) -> None:
    sessions = world.store.sessions
    sue, ana, ben = user(world, "sue"), user(world, "ana"), user(world, "ben")
    held = claim(sessions, ana)
    assert held == world.patients["Alvarez"]
    with sessions() as s:
        assert s.get_one(QueueEntry, held).holder_id == ana.id
    with sessions() as s:
        token = s.get_one(QueueEntry, held).lease_token
        assert token is not None and controls.lease_still_held(s, held, token)
    with transaction(sessions) as s:
        controls.release_lease(s, sue, held, NOW)
    with sessions() as s:
        assert not controls.lease_still_held(s, held, token)  # what ana's console polls
    assert claim(sessions, ben) == held  # first in line again, and nobody holds it
    with sessions() as s:
        assert s.get_one(QueueEntry, held).holder_id == ben.id
    (event,) = audited(sessions, "lease_released")
    assert event.user_id == sue.id and event.patient_id == held
    assert event.detail == {"holder_id": ana.id}


def test_releasing_a_patient_nobody_holds_says_so(world: World) -> None:
    sessions, sue = world.store.sessions, user(world, "sue")
    with pytest.raises(OutreachError, match="not held by anyone"), transaction(sessions) as s:
        controls.release_lease(s, sue, world.patients["Alvarez"], NOW)


def test_callback_reassigned_to_another_agent_or_to_anyone(world: World) -> None:
    sessions, sue = world.store.sessions, user(world, "sue")
    ana, ben = user(world, "ana"), user(world, "ben")
    patient = world.patients["Brown"]
    with transaction(sessions) as s:
        from tests.queues.test_monitor import _attempt

        attempt = _attempt(s, patient, ana.id, "callback_requested", NOW - timedelta(hours=1))
        cb = Callback(patient_id=patient, attempt_id=attempt, due_at=NOW, owner_id=ana.id)
        s.add(cb)
        s.flush()
        callback_id = cb.id
    with transaction(sessions) as s:
        controls.reassign_callback(s, sue, callback_id, ben.id)
    with sessions() as s:
        assert s.get_one(Callback, callback_id).owner_id == ben.id
        assert s.get_one(QueueEntry, patient).reserved_for_id == ben.id
    with transaction(sessions) as s:
        controls.reassign_callback(s, sue, callback_id, None)
    with sessions() as s:
        assert s.get_one(Callback, callback_id).owner_id is None
    events = audited(sessions, "callback_reassigned")
    assert [e.detail["to"] for e in events] == [ben.id, None]


def test_log_out_request_reaches_only_the_session_it_was_made_for(world: World) -> None:
    sessions, sue, ana = world.store.sessions, user(world, "sue"), user(world, "ana")
    with pytest.raises(OutreachError, match="not signed in"), transaction(sessions) as s:
        controls.request_logout(s, sue, ana.id, NOW)
    signed_in_at = NOW - timedelta(hours=1)
    with transaction(sessions) as s:
        s.add(AgentState(user_id=ana.id, state="ready", since=signed_in_at))
    with transaction(sessions) as s:
        controls.request_logout(s, sue, ana.id, NOW)
    with sessions() as s:
        assert controls.logout_requested(s, ana.id, signed_in_at)
        # A console signed in after the request is a new shift: not to be thrown out.
        assert not controls.logout_requested(s, ana.id, NOW + timedelta(minutes=1))
    with transaction(sessions) as s:
        controls.logout_done(s, ana.id)
    with sessions() as s:
        assert not controls.logout_requested(s, ana.id, signed_in_at)
    (event,) = audited(sessions, "agent_logout_requested")
    assert event.user_id == sue.id and event.detail == {"agent_id": ana.id}


def test_do_not_call_by_number_or_by_mrn(world: World) -> None:
    sessions, sue, ana = world.store.sessions, user(world, "sue"), user(world, "ana")
    alvarez, brown = world.patients["Alvarez"], world.patients["Brown"]
    with sessions() as s:
        number = s.scalars(select(Phone.number).where(Phone.patient_id == alvarez)).first()
        mrn = s.get_one(Patient, brown).mrn
    assert number is not None
    with transaction(sessions) as s:
        said = controls.add_do_not_call_for(s, sue, number, NOW)
    assert "do-not-call (1 patient" in said
    with transaction(sessions) as s:
        said = controls.add_do_not_call_for(s, sue, mrn, NOW)
    assert "1 open task(s) closed" in said
    with sessions() as s:
        assert s.scalars(select(Phone.do_not_call).where(Phone.number == number)).one()
        assert s.get_one(Patient, brown).do_not_call
        assert s.get_one(QueueEntry, brown).status == "done"
    assert claim(sessions, ana) == alvarez  # Brown is gone; Alvarez still has another number
    assert len(audited(sessions, "do_not_call_added")) == 2
    with (
        pytest.raises(OutreachError, match="no patient of your pharmacies"),
        transaction(sessions) as s,
    ):
        controls.add_do_not_call_for(s, sue, "+19995550000", NOW)


def test_an_agent_cannot_use_any_control(world: World) -> None:
    sessions, ana = world.store.sessions, user(world, "ana")
    with transaction(sessions) as s:
        s.add(AgentState(user_id=user(world, "ben").id, state="ready", since=NOW))
    attempts: list[Callable[[Session], object]] = [
        lambda s: controls.set_campaign_active(s, ana, campaign_id(world), False, NOW),
        lambda s: controls.set_campaign_weight(s, ana, campaign_id(world), 2, NOW),
        lambda s: controls.release_lease(s, ana, world.patients["Alvarez"], NOW),
        lambda s: controls.request_logout(s, ana, user(world, "ben").id, NOW),
        lambda s: controls.add_do_not_call_for(s, ana, "+12145551000", NOW),
    ]
    for attempt in attempts:
        with pytest.raises(NotAllowed), transaction(sessions) as s:
            attempt(s)
    with sessions() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action.like("campaign%") | AuditEvent.action.like("%released"))
            )
            == 0
        )


def test_a_supervisor_cannot_touch_another_pharmacy(world: World) -> None:
    sessions = world.store.sessions
    with transaction(sessions) as s:
        other = Pharmacy(
            code="OK1",
            name="Sooner Pharmacy",
            caller_id="+14055550100",
            callback_number="+14055550101",
            timezone="America/Chicago",
            state="OK",
            opens_at=NOW.time(),
            closes_at=NOW.time(),
        )
        s.add(other)
        s.flush()
        s.add(
            User(
                username="olga",
                display_name="Olga",
                role="supervisor",
                password_hash="-",
                pharmacies=[other],
            )
        )
    olga = user(world, "olga")
    with pytest.raises(NotAllowed, match="not one of your pharmacies"), transaction(sessions) as s:
        controls.set_campaign_active(s, olga, campaign_id(world), False, NOW)
    with pytest.raises(NotAllowed, match="not in your pharmacies"), transaction(sessions) as s:
        controls.release_lease(s, olga, world.patients["Alvarez"], NOW)
    with (
        pytest.raises(OutreachError, match="no patient of your pharmacies"),
        transaction(sessions) as s,
    ):
        controls.add_do_not_call_for(s, olga, "+12145551000", NOW)
