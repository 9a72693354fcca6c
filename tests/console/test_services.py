"""The services the screens call, without a screen: what an agent's key press costs the database,
what a dial permit promises, and who may open the floor — on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from console.services.container import Services
from console.services.store import open_store
from queues.auth import authenticate
from queues.errors import NotAllowed, NotCallable, WrapUpPending
from queues.store.db import transaction
from queues.store.models import Condition
from queues.views.user import SignedInUser
from tests.world import PASSWORD, World, make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(tmp_path, db_url, NOW, {"Alvarez": 1, "Brown": 3})
    yield w
    w.services.close()


def user(w: World, name: str) -> SignedInUser:
    with transaction(w.store.sessions) as session:
        return authenticate(session, name, PASSWORD)


def count_transactions(w: World) -> list[int]:
    begun = [0]

    def began(conn: Connection) -> None:
        begun[0] += 1

    event.listen(w.store.engine, "begin", began)
    return begun


def test_next_patient_is_one_claim_and_one_read_with_what_the_script_needs(world: World) -> None:
    with transaction(world.store.sessions) as session:
        session.add(
            Condition(
                patient_id=world.patients["Alvarez"], code="44054006", display="Type 2 diabetes"
            )
        )
    shift = world.services.agent_shift(user(world, "ana"))
    begun = count_transactions(world)

    offer = shift.next_patient()

    assert offer is not None and offer.patient.last_name == "Alvarez"
    # The claim, then the context with its verdict and the agent's state: nothing more.
    assert begun[0] <= 2
    assert offer.patient.conditions == ("Type 2 diabetes",)
    assert [t.subject for t in offer.patient.tasks] and all(t.subject for t in offer.patient.tasks)
    with pytest.raises(WrapUpPending):
        shift.next_patient()


def test_a_dial_permit_names_the_pharmacy_and_runs_out_with_the_window(world: World) -> None:
    shift = world.services.agent_shift(user(world, "ana"))
    offer = shift.next_patient()
    assert offer is not None
    number = offer.callable_numbers[0]

    permit = shift.dial_permit(offer, number)

    assert permit.number == number
    assert permit.caller_id == offer.patient.pharmacy.caller_id
    assert permit.valid()
    assert not permit.valid(time.monotonic() + 61)  # never longer than a minute ahead


def test_no_permit_outside_the_calling_window(tmp_path: Path, sqlite_url: str) -> None:
    w = make_world(tmp_path, sqlite_url, NOW, {"Alvarez": 1})
    shift = w.services.agent_shift(user(w, "ana"))
    offer = shift.next_patient()
    assert offer is not None
    number = offer.callable_numbers[0]
    w.services.close()
    # The same database, the agent's clock at 22:00 in Dallas: past the federal 21:00.
    from queues.clock import PracticeClock

    late = open_store(w.store.settings, clock=PracticeClock(NOW + timedelta(hours=12)))
    try:
        later_shift = Services(late).agent_shift(shift.user)
        with pytest.raises(NotCallable):
            later_shift.dial_permit(offer, number)
    finally:
        late.close()


def test_only_a_supervisor_gets_the_floor(world: World) -> None:
    with pytest.raises(NotAllowed):
        world.services.floor(user(world, "ana"))
    floor = world.services.floor(user(world, "sue"))
    snapshot = floor.snapshot()
    assert snapshot.agents is not None


def test_the_floor_service_releases_a_held_patient(world: World) -> None:
    ana = user(world, "ana")
    shift = world.services.agent_shift(ana)
    assert shift.next_patient() is not None
    floor = world.services.floor(user(world, "sue"))

    assert "back in the queue" in floor.release_patient_of(ana.id, ana.display_name)

    assert shift.supervisor_check().released
    from queues.store.models import QueueEntry

    with world.store.sessions() as session:
        assert (
            session.scalar(select(QueueEntry.holder_id).where(QueueEntry.holder_id.is_not(None)))
            is None
        )
