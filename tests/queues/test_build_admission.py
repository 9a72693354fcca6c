"""How a build writes, on SQLite and PostgreSQL: each new queue entry with its calling-rule admission
(queues.claims.admission), the same the full pass over the queue (admit_entries) gives, so a claim right
after a build is one statement for exactly the patients the rules let through; part by part, the
same as in one pass; and a failing rule leaves nothing half-written, even with parts already
handed to the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from demo.world import seed_demo
from queues.building import build
from queues.building.build import build_queues, due_tasks
from queues.building.rules import DEFAULT_RULES
from queues.building.rules.base import DueTask, RuleContext
from queues.building.rules.snapshot import load_snapshot
from queues.claims.admission import (
    admit_entries,
    judge_in_claim_order,
    judge_waiting,
    read_undialed,
)
from queues.settings import QueueSettings
from queues.store.db import make_engine, session_factory, transaction, upgrade
from queues.store.models import Patient, Pharmacy, Phone, QueueEntry, Task, User
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


def test_patients_new_to_the_queue_among_the_rest_get_the_admission_the_full_pass_gives(
    sessions: sessionmaker[Session],
) -> None:
    """A rebuild's few patients new to the queue, scattered among those already in it, end with
    the admissions the full pass gives: none for those whose every number says do not call."""
    seed_demo(sessions, patients=240, seed=5, now=EARLY)
    with transaction(sessions) as s:
        queued = list(s.scalars(select(QueueEntry.patient_id).order_by(QueueEntry.patient_id)))
        anew = queued[::9]
        s.execute(delete(QueueEntry).where(QueueEntry.patient_id.in_(anew)))
        # Half of them asked not to be called on any of their numbers: only their phones say so.
        no_numbers = anew[::2]
        s.execute(update(Phone).where(Phone.patient_id.in_(no_numbers)).values(do_not_call=True))
    noon = EARLY + timedelta(hours=2, minutes=30)  # every demo pharmacy open
    with transaction(sessions) as s:
        build_queues(s, noon)
    written = _admissions(sessions)
    with transaction(sessions) as s:
        s.execute(
            update(QueueEntry).values(admitted_at=None, admitted_until=None, admitted_key=None)
        )
        admit_entries(s, noon)
    full = _admissions(sessions)
    assert sorted(written) == queued
    assert {pid: written[pid] for pid in anew} == {pid: full[pid] for pid in anew}
    assert any(written[pid][1] is not None for pid in anew)  # some are callable now
    assert all(written[pid][1] is None for pid in no_numbers)


def test_scattered_patients_read_by_id_as_they_read_by_range(
    sessions: sessionmaker[Session],
) -> None:
    """read_undialed reads a few ids scattered over a range by their ids, many by the range."""
    seed_demo(sessions, patients=240, seed=5, now=EARLY)
    with sessions() as s:
        everyone = sorted(s.scalars(select(Patient.id)))
        few = everyone[::9]
        assert few[-1] - few[0] >= 2 * len(few)  # so they are read by id
        by_id = read_undialed(s.connection(), few, EARLY)
        by_range = [r for r in read_undialed(s.connection(), everyone, EARLY) if r[0][0] in few]
    assert by_id == by_range
    assert len(by_id) == len(few) and all(phones for _head, phones in by_id)


def test_the_queue_judged_head_first_gets_the_verdicts_of_one_pass_over_everyone(
    sessions: sessionmaker[Session],
) -> None:
    """judge_in_claim_order (a full build's first pass) reads the queue in the order claims
    take it, in reads of 3, 6, then 7 at most here, through runs of equal sort keys, and finds
    what judge_waiting finds in one pass by patient id: each patient once, in claim order."""
    seed_demo(sessions, patients=120, seed=5, now=EARLY)
    with transaction(sessions) as s:  # runs of equal keys, which the keyset must step through
        s.execute(
            update(QueueEntry).values(
                sort_key=QueueEntry.patient_id % 4,
                admitted_at=None,
                admitted_until=None,
                admitted_key=None,
            )
        )
        keys = {
            pid: key for pid, key in s.execute(select(QueueEntry.patient_id, QueueEntry.sort_key))
        }
    reads = list(judge_in_claim_order(sessions, EARLY, first=3, largest=7))
    head_first = [verdict for read in reads for verdict in read]
    with sessions() as s:
        one_pass = judge_waiting(s, EARLY)
    assert sorted(head_first) == sorted(
        (pid, until) for until, ids in one_pass.items() for pid in ids
    )
    assert 20 < len(head_first) < len(keys)  # some judged not callable now (Florida only)
    assert [pid for pid, _ in head_first] == sorted(
        (pid for pid, _ in head_first), key=lambda pid: (keys[pid], pid)
    )
    assert max(len(read) for read in reads) <= 7


def _tables(sessions: sessionmaker[Session]) -> tuple[list[Any], list[Any]]:
    with sessions() as s:
        tasks = s.execute(select(Task.id, Task.subject, Task.status).order_by(Task.id)).all()
        entries = s.execute(
            select(QueueEntry.patient_id, QueueEntry.status, QueueEntry.sort_key).order_by(
                QueueEntry.patient_id
            )
        ).all()
    return tasks, entries


def test_a_build_in_parts_writes_what_one_pass_over_everyone_finds(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_demo(sessions, patients=240, seed=5, now=EARLY)
    later = EARLY + timedelta(days=9)  # new run-outs, so the build writes new tasks too
    with transaction(sessions) as s:
        s.execute(delete(QueueEntry))  # and every entry anew, with its admission
    monkeypatch.setattr(build, "PART_PATIENTS", 7)  # about a dozen parts per pharmacy zone
    with transaction(sessions) as s:
        result = build_queues(s, later)

    with sessions() as s:
        due = due_tasks(load_snapshot(s, later), later, QueueSettings(), DEFAULT_RULES)
        stored = {
            (t.campaign_id, t.patient_id, t.subject): (t.reason, t.priority_parts, t.score)
            for t in s.scalars(select(Task).where(Task.status == "open"))
        }
        queued = set(s.scalars(select(QueueEntry.patient_id).where(QueueEntry.status == "open")))
    assert result.created > 0
    assert stored == {k: (t.reason, t.priority_parts, t.score) for k, t in due.items()}
    assert queued == {t.patient_id for t in due.values()}
    written = _admissions(sessions)
    with transaction(sessions) as s:
        s.execute(
            update(QueueEntry).values(admitted_at=None, admitted_until=None, admitted_key=None)
        )
        assert admit_entries(s, later) == result.admitted > 0
    assert _admissions(sessions) == written


@pytest.mark.parametrize("failing_part", [1, 5])
def test_a_rule_failing_midway_leaves_tasks_and_queue_as_they_were(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, failing_part: int
) -> None:
    seed_demo(sessions, patients=120, seed=5, now=EARLY)
    # In parts of 10 patients: failing in the fifth, four parts have gone to the database.
    monkeypatch.setattr(build, "PART_PATIENTS", 10)
    before = _tables(sessions)
    later = EARLY + timedelta(days=9)  # new run-outs: the rules before the broken one find work
    seen: list[DueTask] = []
    parts = 0

    def broken(ctx: RuleContext) -> Iterator[DueTask | None]:
        nonlocal parts
        assert ctx.now == later
        parts += 1
        if parts == failing_part:
            raise ValueError("a rule's bad day")
        yield None

    def counted(ctx: RuleContext) -> Iterator[DueTask | None]:
        for rule in DEFAULT_RULES:
            for task in rule(ctx):
                if task is not None:
                    seen.append(task)
                yield task

    with pytest.raises(ValueError, match="bad day"), transaction(sessions) as s:
        build_queues(s, later, rules=[counted, broken])
    assert seen  # other rules had found work before the failure
    assert _tables(sessions) == before
    with transaction(sessions) as s:  # the next build runs as if nothing happened
        assert build_queues(s, later).created > 0


@pytest.fixture
def pg_demo(pg_url: str) -> Iterator[sessionmaker[Session]]:
    """PostgreSQL only, where a worker thread writes a build's parts: a demo of 120 patients."""
    engine = make_engine(pg_url, pool_size=4)
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        seed_demo(sessions, patients=120, seed=5, now=EARLY)
        yield sessions
    finally:
        engine.dispose()


def test_a_write_failing_on_the_writer_thread_fails_the_build_and_writes_nothing(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker thread writes each part while the rules work out the next (queues.building.build). A
    rule in the last part makes a task for a campaign that is not there: its part's write fails
    on the foreign key, on the writer's thread; the build fails with it, as SQLAlchemy's
    IntegrityError, and none of the parts written before it stays."""
    seed_demo(sessions, patients=120, seed=5, now=EARLY)
    later = EARLY + timedelta(days=9)  # new run-outs: the parts before the last write tasks
    with sessions() as s:
        last = max(s.scalars(select(Patient.id)))
    monkeypatch.setattr(build, "PART_PATIENTS", 10)
    before = _tables(sessions)

    def no_such_campaign(ctx: RuleContext) -> Iterator[DueTask | None]:
        if last in ctx.snapshot.patients:
            yield DueTask(last, 10_000, "refill_reminder", "nowhere", "a campaign that is not")

    with pytest.raises(IntegrityError, match=r"(?i)foreign key"), transaction(sessions) as s:
        build_queues(s, later, rules=[*DEFAULT_RULES, no_such_campaign])
    assert _tables(sessions) == before
    with transaction(sessions) as s:  # and the next build runs as if nothing happened
        assert build_queues(s, later).created > 0


def test_two_builds_at_once_take_turns(pg_demo: sessionmaker[Session]) -> None:
    """A supervisor pauses a campaign (a build) while the morning build runs: the second waits
    for the first to commit, then finds its work done, instead of failing on the same tasks."""
    sessions = pg_demo
    later = EARLY + timedelta(days=9)
    inside, let_go = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def holding(ctx: RuleContext) -> Iterator[DueTask | None]:
        inside.set()
        assert let_go.wait(60)
        yield None

    def build(name: str, rules: list[Any]) -> None:
        try:
            with transaction(sessions) as s:
                results[name] = build_queues(s, later, rules=rules)
        except Exception as error:  # reported by the assertions below
            results[name] = error

    first = threading.Thread(target=build, args=("first", [*DEFAULT_RULES, holding]))
    first.start()
    assert inside.wait(60)
    second = threading.Thread(target=build, args=("second", list(DEFAULT_RULES)))
    second.start()
    waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    deadline = time.monotonic() + 60
    try:
        with sessions() as conn:
            while not conn.execute(text(waiting)).scalar() and time.monotonic() < deadline:
                time.sleep(0.01)  # polls the server for the second build's wait on the lock
            assert conn.execute(text(waiting)).scalar() == 1
    finally:
        let_go.set()
        first.join(120)
        second.join(120)
    assert results["first"].created > 0
    assert results["second"].created == 0
    assert results["second"].open_tasks == results["first"].open_tasks
