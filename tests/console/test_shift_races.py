"""An agent's shift while its wrap-up is being stored: the console's background checks (the
supervisor poll, the lease heartbeat) run on other threads and may read the claim just before
the save and the lease just after it. The lease that the save itself cleared is not a release
and not a lost lease. Real SQLite and PostgreSQL; the interleaving is made with the database's
own events on two threads, never a sleep."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import event

from console.services.agent_shift import AgentShift
from queues.auth import authenticate
from queues.errors import InvalidOutcome
from queues.store.db import transaction
from queues.views.outcome import Outcome
from tests.world import PASSWORD, World, make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas
BOUND_S = 20.0  # a bound on waiting for the other thread, never a pause
T = TypeVar("T")


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(tmp_path, db_url, NOW, {"Alvarez": 1, "Brown": 3})
    yield w
    w.services.close()


def _shift(w: World) -> AgentShift:
    with transaction(w.store.sessions) as session:
        return w.services.agent_shift(authenticate(session, "ana", PASSWORD))


def _no_answer(shift: AgentShift) -> Outcome:
    offer = shift.offer
    assert offer is not None
    return Outcome(
        uid=str(uuid.uuid4()),
        patient_id=offer.claim.patient_id,
        lease_token=offer.claim.lease_token,
        user_id=shift.user.id,
        disposition="no_answer",
        started_at=NOW,
        ended_at=NOW,
        call_result="no_answer",
    )


def _while_the_save_commits(w: World, shift: AgentShift, check: Callable[[], T]) -> T:
    """Run `check` on another thread, held at its first statement until `shift.record` has
    committed the wrap-up on this one: it read the claim before the save, the lease after."""
    committed, started = threading.Event(), threading.Event()
    checker: list[int] = []
    got: list[Any] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if checker and threading.get_ident() == checker[0] and not committed.is_set():
            started.set()
            if not committed.wait(BOUND_S):
                raise AssertionError("timed out waiting for the save's commit")

    def run() -> None:
        checker.append(threading.get_ident())
        try:
            got.append(check())
        except Exception as exc:  # handed back to the test
            got.append(exc)

    event.listen(w.store.engine, "before_cursor_execute", before)
    try:
        thread = threading.Thread(target=run, name="check")
        thread.start()
        assert started.wait(BOUND_S), "the check never reached the database"
        shift.record(_no_answer(shift))
        committed.set()
        thread.join(BOUND_S)
        assert not thread.is_alive()
    finally:
        event.remove(w.store.engine, "before_cursor_execute", before)
    if isinstance(got[0], Exception):
        raise got[0]
    result: T = got[0]
    return result


def test_the_supervisor_poll_does_not_call_a_patient_being_stored_released(world: World) -> None:
    shift = _shift(world)
    offer = shift.next_patient()
    assert offer is not None

    word = _while_the_save_commits(world, shift, shift.supervisor_check)

    assert not word.released
    assert shift.offer is None  # stored: the agent is free
    assert not shift.holding(offer.claim.lease_token)


def test_the_heartbeat_does_not_lose_a_lease_the_save_let_go(world: World) -> None:
    shift = _shift(world)
    assert shift.next_patient() is not None

    renewed = _while_the_save_commits(world, shift, shift.heartbeat)

    assert renewed is None  # nothing to renew, and no LeaseLost: the call is stored


def test_a_release_is_still_reported_with_the_claim_it_is_about(world: World) -> None:
    shift = _shift(world)
    offer = shift.next_patient()
    assert offer is not None
    with transaction(world.store.sessions) as session:
        sue = authenticate(session, "sue", PASSWORD)
    world.services.floor(sue).release_patient_of(shift.user.id, shift.user.display_name)

    word = shift.supervisor_check()

    assert word.released and word.lease_token == offer.claim.lease_token
    assert shift.holding(offer.claim.lease_token)  # nothing stored: the wrap-up stores it late


def test_a_refused_save_leaves_the_claim_held(world: World) -> None:
    """A save refused (a disposition that does not exist) does not mark the claim stored: a
    real release after it is still told."""
    shift = _shift(world)
    offer = shift.next_patient()
    assert offer is not None
    bad = dataclasses.replace(_no_answer(shift), disposition="no_such_disposition")
    with pytest.raises(InvalidOutcome):
        shift.record(bad)
    assert shift.holding(offer.claim.lease_token)
