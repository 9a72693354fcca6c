"""`outreach queue build` works in short steps: between two of its writes an agent's claim goes
through at once, on SQLite (no write lock held across steps) and on PostgreSQL."""

from __future__ import annotations

import itertools
import os
import sys
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from demo.world import seed_demo
from queues.building import stepwise
from queues.claims import admission
from queues.claims.claiming import claim_next
from queues.claims.fast_claimer import Claimer
from queues.store.db import transaction
from queues.store.models import Pharmacy, QueueEntry, Task, User

T0 = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def test_agents_claim_between_the_steps_of_a_full_build(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_demo(sessions, patients=300, seed=5, now=T0)
    with transaction(sessions) as s:  # a first build of everything, as after a big import
        s.execute(text("DELETE FROM queue_entries"))
        s.execute(text("UPDATE attempts SET task_ids = '{}'"))
        s.execute(text("DELETE FROM tasks"))
        agent = s.scalars(select(User).where(User.role == "agent").order_by(User.id)).first()
        assert agent is not None
        agent_id = agent.id
        pharmacies = list(s.scalars(select(Pharmacy.id)))
    monkeypatch.setattr(stepwise, "STEP_ROWS", 200)
    monkeypatch.setattr(stepwise, "IDLE_STEP_ROWS", 200)  # the claims' holds aside
    # Steps of 200 rows whatever they take (SQLite's are sized by time): a claim after each.
    monkeypatch.setattr(stepwise, "SQLITE_STEP_SECONDS", 60.0)
    claims: list[Any] = []
    real_step = stepwise._Steps._step

    def step_then_claim(self: stepwise._Steps, write: Any, args: tuple[Any, ...]) -> None:
        real_step(self, write, args)
        # The step has committed: the claim must not wait on the build (no busy error).
        with transaction(sessions) as s:
            claim = claim_next(
                s,
                user_id=agent_id,
                pharmacy_ids=pharmacies,
                now=T0 + timedelta(minutes=len(claims)),
                lease_seconds=1,
                admit=None,
            )
        claims.append(claim)

    monkeypatch.setattr(stepwise._Steps, "_step", step_then_claim)
    result = stepwise.build_queues_in_steps(sessions, T0)
    assert result.created > 200 and len(claims) > 5
    assert any(c is not None for c in claims)
    with sessions() as s:
        open_tasks = s.scalars(select(Task.id).where(Task.status == "open")).all()
        entries = s.scalars(select(QueueEntry.patient_id)).all()
    assert len(open_tasks) == result.open_tasks and len(entries) == result.queued_patients


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread: Linux")
def test_a_full_build_works_out_its_rules_at_a_lower_cpu_priority_and_writes_at_the_callers(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consoles' claims get the CPU first while a build works out its rules; its writes run
    at the caller's priority (on SQLite a step starved of CPU would hold the write lock while
    claims wait), and the caller's priority is left as it was."""
    seed_demo(sessions, patients=30, seed=5, now=T0)
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    working: list[int] = []
    writing: list[int] = []
    real_run, real_execute = stepwise._Steps.run, stepwise._execute

    def run_and_note(self: stepwise._Steps, write: Any, *args: Any) -> None:
        working.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        real_run(self, write, *args)

    def execute_and_note(conn: Any, statement: Any, params: Any) -> None:
        writing.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        real_execute(conn, statement, params)

    monkeypatch.setattr(stepwise._Steps, "run", run_and_note)
    monkeypatch.setattr(stepwise, "_execute", execute_and_note)
    stepwise.build_queues_in_steps(sessions, T0 + timedelta(days=1))
    assert working and set(working) == {min(caller + stepwise.BUILD_NICENESS, 19)}
    assert writing and set(writing) == {caller}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller


def test_a_write_step_that_fails_fails_the_build_on_the_callers_thread(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write step runs on the caller's thread: its error reaches the caller as it was raised."""
    seed_demo(sessions, patients=30, seed=5, now=T0)

    class StepFailed(Exception):
        pass

    def failing(conn: Any, statement: Any, params: Any) -> None:
        raise StepFailed("the third step")

    monkeypatch.setattr(stepwise, "_execute", failing)
    with pytest.raises(StepFailed):
        stepwise.build_queues_in_steps(sessions, T0 + timedelta(days=1))


def test_a_build_on_a_new_day_admits_the_head_of_the_queue_before_it_judges_the_tail(
    engine: Engine, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Yesterday's admissions have run out: the build's first step stores the verdicts of the
    patients claims take first, and a claim right after it is the one statement, not the full
    check it would be until the build reached that patient."""
    seed_demo(sessions, patients=300, seed=5, now=T0)
    day_after = T0 + timedelta(days=1)
    with sessions() as s:
        agent = s.scalars(select(User.id).where(User.role == "agent").order_by(User.id)).first()
        pharmacies = list(s.scalars(select(Pharmacy.id)))
        # The queue as a claim walks it (ix_queue_entries_claimable's order).
        claim_order = list(
            s.scalars(
                select(QueueEntry.patient_id)
                .where(
                    QueueEntry.status == "open",
                    QueueEntry.claimed_at.is_(None),
                    QueueEntry.blocked_reason.is_(None),
                )
                .order_by(QueueEntry.sort_key, QueueEntry.patient_id)
            )
        )
    assert agent is not None and len(claim_order) > 100
    assert admitted_at(sessions, day_after) == set()  # all of yesterday's have run out
    monkeypatch.setattr(admission, "CLAIM_ORDER_FIRST", 20)
    judged: list[int] = []  # patients judged so far, in the order the build read them
    real_judge = admission.Judge.until

    def judge_and_note(self: admission.Judge, head: Any, phones: Any) -> Any:
        judged.append(head.patient_id)
        return real_judge(self, head, phones)

    monkeypatch.setattr(admission.Judge, "until", judge_and_note)
    first_step: dict[str, Any] = {}
    real_run = stepwise._Steps.run_in_session

    def run_and_look(self: stepwise._Steps, write: Any, *args: Any) -> None:
        real_run(self, write, *args)
        if first_step:
            return
        first_step["judged"] = list(judged)
        first_step["admitted"] = admitted_at(sessions, day_after)
        with closing(Claimer(engine, sessions)) as claimer:
            claim = claimer.next(
                user_id=agent, pharmacy_ids=pharmacies, now=day_after, lease_seconds=60
            )
            first_step["claim"] = (claim.patient_id if claim else None, claimer.fast)

    monkeypatch.setattr(stepwise._Steps, "run_in_session", run_and_look)
    stepwise.build_queues_in_steps(sessions, day_after)

    # The first step stored the head's verdicts having judged only the head: 20 patients.
    assert first_step["judged"] == claim_order[:20]
    head = first_step["admitted"]
    assert head and head <= set(claim_order[:20])
    # The claim after it took the best admitted patient in one statement.
    best = next(pid for pid in claim_order if pid in head)
    assert first_step["claim"] == (best, 1)
    # The rest of the queue came after, and its callable patients were admitted too.
    assert len(judged) >= len(claim_order)
    later = admitted_at(sessions, day_after) - head
    assert later and all(claim_order.index(pid) >= 20 for pid in later if pid in claim_order)


def admitted_at(sessions: sessionmaker[Session], at: datetime) -> set[int]:
    """Open entries whose admission was made at `at`."""
    with sessions() as s:
        return set(
            s.scalars(
                select(QueueEntry.patient_id).where(
                    QueueEntry.status == "open", QueueEntry.admitted_at == at
                )
            )
        )


def test_a_new_rows_step_that_fails_while_the_rules_still_work_fails_the_build_and_ends_it(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL writes a first build's new rows while its rules work on (the steps queued on
    the caller's thread): a step's failure still fails the build on the caller's thread, no
    step queued after it is written, and Python's switch interval is as it was."""
    seed_demo(sessions, patients=200, seed=5, now=T0)
    with transaction(sessions) as s:  # a first build of everything, as after a big import
        s.execute(text("DELETE FROM queue_entries"))
        s.execute(text("UPDATE attempts SET task_ids = '{}'"))
        s.execute(text("DELETE FROM tasks"))
    monkeypatch.setattr(stepwise, "PART_PATIENTS", 20)  # many parts, each its own steps
    monkeypatch.setattr(stepwise, "STEP_ROWS", 10)
    monkeypatch.setattr(stepwise, "IDLE_STEP_ROWS", 10)  # nobody works here
    monkeypatch.setattr(stepwise, "SQLITE_STEP_SECONDS", 60.0)

    class StepFailed(Exception):
        pass

    written: list[int] = []
    real_insert = stepwise.insert_rows

    def third_fails(conn: Any, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "tasks" and len(written) == 2:
            raise StepFailed("the third step")
        real_insert(conn, name, *args, **kwargs)
        if name == "tasks":
            written.append(len(args[1]))

    monkeypatch.setattr(stepwise, "insert_rows", third_fails)
    interval = sys.getswitchinterval()
    with pytest.raises(StepFailed):
        stepwise.build_queues_in_steps(sessions, T0)
    assert sys.getswitchinterval() == interval
    with sessions() as s:
        assert len(written) == 2  # the steps before the failing one, and none after it
        assert s.scalar(select(func.count()).select_from(Task)) == sum(written)
        assert s.scalar(select(func.count()).select_from(QueueEntry)) == 0


def test_a_build_that_fails_keeps_the_builds_lock_until_its_step_in_flight_is_written(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: when the rules fail while a queued step of new rows is being written, the
    build ends only once that step is done, so the builds' lock does not pass to the next build
    while this one still writes (that build would miss the rows and fail on their keys)."""
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite writes each step before the rules go on")
    seed_demo(sessions, patients=200, seed=5, now=T0)
    with transaction(sessions) as s:
        s.execute(text("DELETE FROM queue_entries"))
        s.execute(text("UPDATE attempts SET task_ids = '{}'"))
        s.execute(text("DELETE FROM tasks"))
    monkeypatch.setattr(stepwise, "PART_PATIENTS", 20)
    monkeypatch.setattr(stepwise, "STEP_ROWS", 10)
    monkeypatch.setattr(stepwise, "IDLE_STEP_ROWS", 10)  # nobody works here

    class RulesFailed(Exception):
        pass

    writing, stopped = threading.Event(), threading.Event()
    ended_while_writing: list[bool] = []
    real_due, real_insert, real_stop = stepwise._due_in, stepwise.insert_rows, stepwise._Steps.stop
    parts = itertools.count()

    def due_then_fail(*args: Any, **kwargs: Any) -> Any:
        if next(parts) == 2:  # a later part, while a step of the first is being written
            assert writing.wait(30)
            raise RulesFailed("the third part")
        return real_due(*args, **kwargs)

    def slow_first_insert(conn: Any, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "tasks" and not writing.is_set():
            writing.set()
            # The build must not end while this step writes: its stop waits for it.
            ended_while_writing.append(stopped.wait(1.0))
        real_insert(conn, name, *args, **kwargs)

    def stop_and_note(self: stepwise._Steps) -> None:
        real_stop(self)
        stopped.set()

    monkeypatch.setattr(stepwise, "_due_in", due_then_fail)
    monkeypatch.setattr(stepwise, "insert_rows", slow_first_insert)
    monkeypatch.setattr(stepwise._Steps, "stop", stop_and_note)
    with pytest.raises(RulesFailed):
        stepwise.build_queues_in_steps(sessions, T0)
    assert ended_while_writing == [False]
    assert stopped.is_set()
