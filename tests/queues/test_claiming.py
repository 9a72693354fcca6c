"""Claiming on SQLite and PostgreSQL: a patient is with at most one agent at a time, under load."""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from queues.auth import signed_in
from queues.claims.claiming import Claim, claim_next, renew_lease
from queues.errors import LeaseLost
from queues.outcomes import Outcome, record_outcome
from queues.store.db import transaction
from queues.store.models import Attempt, AuditEvent, QueueEntry, User, UserPharmacy
from tests.conftest import NOW, add_pharmacy, add_queue

LEASE = 300
TASKS = 2000


def add_agent(session: Session, name: str, pharmacy_ids: list[int]) -> int:
    user = User(username=name, display_name=name.title(), role="agent", password_hash="-")
    session.add(user)
    session.flush()
    for ph in pharmacy_ids:
        session.add(UserPharmacy(user_id=user.id, pharmacy_id=ph))
    session.flush()
    return user.id


def pharmacies_of(sessions: sessionmaker[Session], user_id: int) -> tuple[int, ...]:
    """The user's assignment as sign-in reads it, so the test serves what the console would."""
    with transaction(sessions) as s:
        return signed_in(s.get_one(User, user_id)).pharmacy_ids


def claim(
    sessions: sessionmaker[Session], user_id: int, at: datetime = NOW, lease: int = LEASE
) -> Claim | None:
    with transaction(sessions) as s:
        return claim_next(
            s,
            user_id=user_id,
            pharmacy_ids=pharmacies_of(sessions, user_id),
            now=at,
            lease_seconds=lease,
        )


def holder(sessions: sessionmaker[Session], patient_id: int) -> int | None:
    with sessions() as s:
        return s.get_one(QueueEntry, patient_id).holder_id


def complete(s: Session, c: Claim, user_id: int, at: datetime) -> None:
    outcome = Outcome(
        uid=str(uuid.uuid4()),
        patient_id=c.patient_id,
        lease_token=c.lease_token,
        user_id=user_id,
        disposition="completed",
        started_at=at,
        ended_at=at,
        call_result="connected",
    )
    record_outcome(s, outcome, at)


def add_agents_in_bulk(session: Session, pharmacy_id: int, n: int) -> list[int]:
    tag = uuid.uuid4().hex[:8]
    session.execute(
        insert(User),
        [
            dict(username=f"{tag}{k}", display_name=f"Agent {k}", role="agent", password_hash="-")
            for k in range(n)
        ],
    )
    ids = list(
        session.scalars(select(User.id).where(User.username.like(f"{tag}%")).order_by(User.id))
    )
    session.execute(insert(UserPharmacy), [dict(user_id=u, pharmacy_id=pharmacy_id) for u in ids])
    return ids


def run_together(jobs: list[Callable[[], None]]) -> None:
    """Run each job in its own thread; a job's failure, or one still running after a minute,
    fails the test."""
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[0]
    assert not any(t.is_alive() for t in threads)


def test_many_consoles_at_once_each_patient_is_claimed_exactly_once(
    db_url: str, sessions: sessionmaker[Session]
) -> None:
    # Threads on SQLite (one writer at a time behind BEGIN IMMEDIATE); on PostgreSQL each thread
    # checks out its own pooled connection, so these are truly concurrent transactions. Every
    # claim is by a console that holds nobody yet, so each claim takes a new patient: the queue
    # drains by claims alone, with every claimed patient still under a live lease.
    workers = 8 if db_url.startswith("sqlite") else 12
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        patients = add_queue(s, ph, TASKS)
        consoles = iter(add_agents_in_bulk(s, ph, TASKS + workers))
    pairs: list[tuple[int, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def claimer() -> None:
        start.wait()
        while True:
            with lock:
                user_id = next(consoles)
            with transaction(sessions) as s:
                c = claim_next(s, user_id=user_id, pharmacy_ids=[ph], now=NOW, lease_seconds=LEASE)
            if c is None:
                return
            with lock:
                pairs.append((c.patient_id, user_id))

    run_together([claimer] * workers)

    claimed = Counter(p for p, _ in pairs)
    assert [p for p, n in claimed.items() if n > 1] == []
    assert set(claimed) == set(patients)
    with sessions() as s:
        held = set(s.execute(select(QueueEntry.patient_id, QueueEntry.holder_id)).all())
        audited = s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "claim")
        )
    # The database agrees with what each console was told.
    assert {tuple(r) for r in held} == set(pairs)
    assert audited == TASKS


def test_agents_working_the_queue_together_each_call_a_patient_once(
    db_url: str, sessions: sessionmaker[Session]
) -> None:
    # The agent's loop: claim (committed), then disposition it so they may take the next one.
    workers = 4 if db_url.startswith("sqlite") else 8
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        patients = add_queue(s, ph, 300)
        agents = [add_agent(s, f"agent{k}", [ph]) for k in range(workers)]
    pairs: list[tuple[int, int]] = []
    lock = threading.Lock()

    def shift(user_id: int) -> None:
        while True:
            with transaction(sessions) as s:
                c = claim_next(s, user_id=user_id, pharmacy_ids=[ph], now=NOW, lease_seconds=LEASE)
            if c is None:
                return
            assert not c.resumed  # the last one was dispositioned, so never handed back
            with lock:
                pairs.append((c.patient_id, user_id))
            with transaction(sessions) as s:
                complete(s, c, user_id, NOW)

    run_together([functools.partial(shift, u) for u in agents])
    assert sorted(p for p, _ in pairs) == sorted(patients)
    assert len({u for _, u in pairs}) > 1  # the work really was shared
    with sessions() as s:
        stored = set(s.execute(select(Attempt.patient_id, Attempt.user_id)).all())
        still_open = s.scalar(
            select(func.count()).select_from(QueueEntry).where(QueueEntry.status == "open")
        )
    assert {tuple(r) for r in stored} == set(pairs)
    assert still_open == 0


def test_an_agent_holding_a_live_lease_gets_the_same_patient_back(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        add_queue(s, ph, 5)
        ann = add_agent(s, "ann", [ph])
    first = claim(sessions, ann)
    again = claim(sessions, ann, NOW + timedelta(seconds=60))  # a restarted console
    assert first is not None and again is not None
    assert not first.resumed
    assert again.resumed
    assert (again.patient_id, again.lease_token) == (first.patient_id, first.lease_token)
    with sessions() as s:
        held = s.scalar(
            select(func.count()).select_from(QueueEntry).where(QueueEntry.holder_id == ann)
        )
    assert held == 1


def test_a_held_patient_is_not_offered_to_another_agent_until_the_lease_expires(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        (only,) = add_queue(s, ph, 1)
        ann, bob = add_agent(s, "ann", [ph]), add_agent(s, "bob", [ph])
    assert claim(sessions, ann) is not None
    assert claim(sessions, bob, NOW + timedelta(seconds=LEASE - 1)) is None
    # Ann's console died mid-call: once the lease runs out, Bob gets the patient.
    taken = claim(sessions, bob, NOW + timedelta(seconds=LEASE + 1))
    assert taken is not None and taken.patient_id == only and not taken.resumed
    assert holder(sessions, only) == bob


def test_a_heartbeat_pushes_the_lease_out(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        (only,) = add_queue(s, ph, 1)
        ann, bob = add_agent(s, "ann", [ph]), add_agent(s, "bob", [ph])
    c = claim(sessions, ann)
    assert c is not None
    beat = NOW + timedelta(seconds=200)
    with transaction(sessions) as s:
        expires = renew_lease(s, only, c.lease_token, beat, LEASE)
    assert expires == beat + timedelta(seconds=LEASE)
    # Past the first expiry but inside the renewed one: still Ann's.
    assert claim(sessions, bob, NOW + timedelta(seconds=LEASE + 50)) is None
    assert holder(sessions, only) == ann


def test_a_heartbeat_after_another_agent_took_the_patient_raises_lease_lost(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        (only,) = add_queue(s, ph, 1)
        ann, bob = add_agent(s, "ann", [ph]), add_agent(s, "bob", [ph])
    c = claim(sessions, ann)
    assert c is not None
    late = NOW + timedelta(seconds=LEASE + 1)
    assert claim(sessions, bob, late) is not None
    with pytest.raises(LeaseLost) as lost, transaction(sessions) as s:
        renew_lease(s, only, c.lease_token, late, LEASE)
    assert lost.value.patient_id == only
    assert "expired" in str(lost.value)
    assert holder(sessions, only) == bob


def test_a_claim_is_written_to_the_audit_log(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        add_queue(s, ph, 3)
        ann = add_agent(s, "ann", [ph])
    c = claim(sessions, ann)
    assert c is not None
    with sessions() as s:
        events = s.execute(
            select(AuditEvent.action, AuditEvent.user_id, AuditEvent.patient_id)
        ).all()
    assert ("claim", ann, c.patient_id) in [tuple(e) for e in events]


def test_an_agent_with_no_pharmacies_gets_nobody(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        add_queue(s, ph, 3)
        loner = add_agent(s, "loner", [])
    assert claim(sessions, loner) is None
    with sessions() as s:
        held = s.scalar(
            select(func.count()).select_from(QueueEntry).where(QueueEntry.holder_id.is_not(None))
        )
    assert held == 0


def test_an_agent_is_served_only_from_their_own_pharmacies(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        mine, other = add_pharmacy(s, "TX1"), add_pharmacy(s, "CA1", "America/Los_Angeles")
        # The other pharmacy's patients sort first: a leak would show at once.
        theirs = set(add_queue(s, other, 4))
        ours = set(add_queue(s, mine, 4))
        agents = [add_agent(s, f"agent{k}", [mine]) for k in range(5)]
    got = [claim(sessions, u) for u in agents]
    served = {c.patient_id for c in got if c is not None}
    assert served == ours
    assert got[-1] is None  # the other pharmacy still has open patients, but not for them
    with sessions() as s:
        untouched = s.scalars(
            select(QueueEntry.patient_id).where(QueueEntry.holder_id.is_(None))
        ).all()
    assert set(untouched) == theirs


def test_a_claim_puts_every_expired_lease_back_and_the_dead_consoles_lose_them(
    sessions: sessionmaker[Session],
) -> None:
    # Two consoles die mid-call. The next claim by anyone (here for a third patient's worth of
    # work) wakes both: the patients are unheld, the first goes to the claimer in queue order,
    # the second to the next agent, and the dead consoles' heartbeats are refused.
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        first, second = add_queue(s, ph, 2)
        ann, cat, dan, eve = (add_agent(s, n, [ph]) for n in ("ann", "cat", "dan", "eve"))
    a, c = claim(sessions, ann), claim(sessions, cat)
    assert a is not None and c is not None
    assert (a.patient_id, c.patient_id) == (first, second)
    late = NOW + timedelta(seconds=LEASE + 1)
    taken = claim(sessions, dan, late)
    assert taken is not None and taken.patient_id == first and not taken.resumed
    with sessions() as s:
        woken = s.get_one(QueueEntry, second)
        assert (woken.holder_id, woken.lease_token, woken.claimed_at) == (None, None, None)
    for held in (a, c):
        with pytest.raises(LeaseLost), transaction(sessions) as s:
            renew_lease(s, held.patient_id, held.lease_token, late, LEASE)
    again = claim(sessions, eve, late)
    assert again is not None and again.patient_id == second
    assert holder(sessions, second) == eve
    # Each of them still sees their own live lease as theirs (a restarted console resumes).
    back = claim(sessions, dan, late + timedelta(seconds=5))
    assert back is not None and back.resumed and back.patient_id == first


def test_a_patient_called_back_later_waits_out_of_the_queue_until_then(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        (only,) = add_queue(s, ph, 1)
        ann, bob = add_agent(s, "ann", [ph]), add_agent(s, "bob", [ph])
    c = claim(sessions, ann)
    assert c is not None
    with transaction(sessions) as s:
        outcome = Outcome(
            uid=str(uuid.uuid4()),
            patient_id=c.patient_id,
            lease_token=c.lease_token,
            user_id=ann,
            disposition="busy",  # a busy line does not count against the caps
            started_at=NOW,
            ended_at=NOW,
            call_result="busy",
        )
        recorded = record_outcome(s, outcome, NOW)
    retry_at = recorded.next_available_at
    assert retry_at is not None and retry_at > NOW
    assert claim(sessions, bob, retry_at - timedelta(seconds=1)) is None
    got = claim(sessions, bob, retry_at)
    assert got is not None and got.patient_id == only


def _head_cost(sessions: sessionmaker[Session], ph: int, user_id: int) -> int:
    """How much work the head query does: SQLite virtual-machine steps, or on PostgreSQL the
    index tuples read plus rows removed by a filter (from EXPLAIN ANALYZE)."""
    from queues.claims.claiming import _STATEMENTS

    with sessions() as s:
        conn = s.connection()
        postgres = conn.dialect.name == "postgresql"
        stmt = _STATEMENTS[postgres].head
        params = {"now": NOW, "ids": [ph], "user": user_id}
        if postgres:

            def explain(*args: Any) -> tuple[str, Any]:
                statement, parameters = args[2], args[3]
                return "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters

            event.listen(conn, "before_cursor_execute", explain, retval=True)
            try:
                found = conn.execute(stmt, params).scalar()
            finally:
                event.remove(conn, "before_cursor_execute", explain)
            s.rollback()
            assert found is not None
            plan = (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]

            def walk(node: dict[str, object]) -> list[dict[str, object]]:
                kids = node.get("Plans", [])
                assert isinstance(kids, list)
                return [node, *(n for k in kids for n in walk(k))]

            nodes = walk(plan)
            assert any(n.get("Index Name") == "ix_queue_entries_claimable" for n in nodes)
            return sum(
                int(n.get("Rows Removed by Filter", 0)) + int(n.get("Actual Rows", 0))  # type: ignore[call-overload]
                for n in nodes
                if n.get("Node Type") in ("Index Scan", "Index Only Scan")
            )
        raw = conn.connection.driver_connection
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        raw.set_progress_handler(count, 1)  # type: ignore[union-attr]
        try:
            conn.execute(stmt, params).all()
        finally:
            raw.set_progress_handler(None, 1)  # type: ignore[union-attr]
        return steps[0]


def test_held_patients_do_not_slow_the_next_claim(
    db_url: str, sessions: sessionmaker[Session]
) -> None:
    # The head of the queue reads only claimable rows: with 150 patients held in front of it, it
    # does about the work it did with none (it used to walk past every one of them).
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        add_queue(s, ph, 200)
        agents = add_agents_in_bulk(s, ph, 151)
    before = _head_cost(sessions, ph, agents[-1])
    for user in agents[:150]:
        assert claim(sessions, user) is not None
    after = _head_cost(sessions, ph, agents[-1])
    assert after <= before * 1.5 + 5, (before, after)
