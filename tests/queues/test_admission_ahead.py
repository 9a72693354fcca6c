"""Admission ahead of the claims (queues.claims.admission_ahead), on SQLite and PostgreSQL: on a new
day, when every admission has run out, the claim that runs the full check admits the heads after
it, so the claims after it are the one statement — and never admits a patient the full check
would refuse, including while a full build writes on another connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from demo.world import seed_demo
from queues.building import stepwise
from queues.claims import admission_ahead, fast_claimer
from queues.claims.admission import admit_entries
from queues.claims.admission_ahead import ADMIT_AHEAD, AHEAD_FIRST, admit_ahead
from queues.claims.fast_claimer import Claimer
from queues.compliance import patient_verdict
from queues.settings import QueueSettings
from queues.store.db import reading, transaction
from queues.store.models import Patient, Pharmacy, QueueEntry, User
from tests.queues.test_admission import add_agent, add_dial
from tests.queues.test_claimer import LEASE, NOON, small_queue

DAY_AFTER = NOON + timedelta(days=1)  # Thursday 12:00 in Chicago: yesterday's admissions ran out


@pytest.fixture(autouse=True)
def fresh_admit_ahead() -> Iterator[None]:
    """The process's AdmitAhead as a process starts with it (its size grows with use)."""
    ADMIT_AHEAD.size = AHEAD_FIRST
    yield
    assert ADMIT_AHEAD.wait_idle(60)  # nothing of this test's left running into the next one
    ADMIT_AHEAD.size = AHEAD_FIRST


def live_admissions(sessions: sessionmaker[Session], at: datetime) -> dict[int, datetime | None]:
    with reading(sessions) as s:  # on SQLite a snapshot: no wait for a writer's lock
        rows = s.execute(
            select(QueueEntry.patient_id, QueueEntry.admitted_until).where(
                QueueEntry.status == "open",
                QueueEntry.admitted_at <= at,
                QueueEntry.admitted_until > at,
                QueueEntry.admitted_key.is_not(None),
            )
        ).all()
    return {pid: until for pid, until in rows}


def assert_as_the_full_check_says(sessions: sessionmaker[Session], at: datetime) -> int:
    """Every live admission at `at` is a patient the full check finds callable then, until the
    time it says; returns how many there are."""
    live = live_admissions(sessions, at)
    with sessions() as s:
        for pid, until in live.items():
            verdict = patient_verdict(s, pid, at)
            assert verdict.callable, (pid, verdict.codes)
            assert until is not None and verdict.open_until is not None
            assert abs(until - verdict.open_until) < timedelta(seconds=1), pid
    return len(live)


def test_the_claim_that_finds_the_head_run_out_admits_the_heads_after_it(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 12)
        agents = [add_agent(s, f"a{k}") for k in range(14)]
        admit_entries(s, NOON)
    with transaction(sessions) as s:
        # Two heads the rules refuse today: a do-not-call patient, and one called two hours ago
        # (at the daily cap; a dialed patient is left to the claim's full check).
        refused = pids[5], pids[8]
        s.execute(update(Patient).where(Patient.id == refused[0]).values(do_not_call=True))
        add_dial(s, refused[1], agents[-1], DAY_AFTER - timedelta(hours=2), "connected")
    assert live_admissions(sessions, DAY_AFTER) == {}  # yesterday's have all run out
    with closing(Claimer(engine, sessions)) as claimer:
        first = claimer.next(
            user_id=agents[0], pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE
        )
        assert first is not None and first.patient_id == pids[0]
        assert (claimer.fast, claimer.full) == (0, 1)
        assert ADMIT_AHEAD.wait_idle(60)  # on the admission-ahead thread, after the claim
        # The heads after it are admitted now, as the full check would admit them (not the two
        # it refuses), each until the time the full check gives (the claimed one keeps its own).
        callable_rest = [p for p in pids[1:] if p not in refused]
        assert set(live_admissions(sessions, DAY_AFTER)) == {pids[0], *callable_rest}
        assert assert_as_the_full_check_says(sessions, DAY_AFTER) == 1 + len(callable_rest)
        got = [
            claimer.next(user_id=a, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE)
            for a in agents[1:10]
        ]
    # Every callable patient once, best first; a full claim only where the head was one the
    # rules refuse (the full check passes over it): the one statement for all the others.
    assert [c.patient_id for c in got if c] == callable_rest
    assert (claimer.fast, claimer.full) == (len(callable_rest) - 2, 3)


def test_admissions_made_ahead_are_never_wider_than_the_full_check(
    sessions: sessionmaker[Session],
) -> None:
    """A demo world (zones, cells, best times, flags, a history of calls), at instants over a day
    and a half: what admit_ahead admits, the full check finds callable, until the same time."""
    seed_demo(sessions, patients=200, seed=11, now=NOON)
    with sessions() as s:
        pharmacies = list(s.scalars(select(Pharmacy.id)))
    settings = QueueSettings()
    admitted = 0
    for hours in (13, 18, 22, 27, 34):
        at = NOON + timedelta(hours=hours, minutes=7)
        admit_ahead(sessions, at, settings, pharmacies, 500)
        admitted += assert_as_the_full_check_says(sessions, at)
    assert admitted  # some instants had callable patients


def test_claims_while_a_full_build_runs_get_patients_the_rules_allow(
    engine: Engine, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build on a new day, a claim after each of its write steps on another connection: each
    claim gets a patient the full check finds callable then, no patient twice, and the
    admissions the build and the claims stored are the full check's."""
    seed_demo(sessions, patients=120, seed=5, now=NOON)
    with sessions() as s:
        agents = iter(s.scalars(select(User.id).where(User.role == "agent")).all())
        pharmacies = list(s.scalars(select(Pharmacy.id)))
    with transaction(sessions) as s:  # agents enough for a claim after every step
        more = [add_agent(s, f"b{k}") for k in range(400)]
    users = iter([*agents, *more])
    claimed: list[int] = []
    real_run = stepwise._Steps.run_in_session
    claimer = Claimer(engine, sessions)

    def run_then_claim(self: stepwise._Steps, write: Any, *args: Any) -> None:
        real_run(self, write, *args)
        claim = claimer.next(
            user_id=next(users), pharmacy_ids=pharmacies, now=DAY_AFTER, lease_seconds=LEASE
        )
        if claim is not None:
            with sessions() as s:
                verdict = patient_verdict(s, claim.patient_id, DAY_AFTER)
            assert verdict.callable, (claim.patient_id, verdict.codes)
            claimed.append(claim.patient_id)

    monkeypatch.setattr(stepwise._Steps, "run_in_session", run_then_claim)
    # Steps of 10 rows whatever they take (SQLite's are sized by time): many claims in between.
    monkeypatch.setattr(stepwise, "STEP_ROWS", 10)
    monkeypatch.setattr(stepwise, "SQLITE_STEP_ROWS", 10)
    monkeypatch.setattr(stepwise, "IDLE_STEP_ROWS", 10)
    monkeypatch.setattr(stepwise, "SQLITE_STEP_SECONDS", 60.0)
    with closing(claimer):
        # The first claim, before the build's first step: the full check, and the heads after it.
        first = claimer.next(
            user_id=next(users), pharmacy_ids=pharmacies, now=DAY_AFTER, lease_seconds=LEASE
        )
        assert first is not None and claimer.full == 1
        claimed.append(first.patient_id)
        assert ADMIT_AHEAD.wait_idle(60)
        stepwise.build_queues_in_steps(sessions, DAY_AFTER)
        assert ADMIT_AHEAD.wait_idle(60)
    assert len(claimed) > 10 and len(set(claimed)) == len(claimed)
    assert claimer.fast  # heads admitted ahead (patients dialed this week get the full check)
    assert assert_as_the_full_check_says(sessions, DAY_AFTER) > 40


def test_admitting_ahead_skips_a_row_another_transaction_holds_rather_than_wait(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a head row another transaction has locked (a claim being made, a build's step)
    is left for later; the claim that admits ahead neither waits for it nor fails."""
    from queues.store.db import make_engine, session_factory, upgrade

    engine = make_engine(pg_url)
    upgrade(engine)
    sessions = session_factory(engine)
    try:
        with transaction(sessions) as s:
            ph, pids = small_queue(s, 10)
            agent = add_agent(s)
        held = pids[2:5]
        with engine.connect() as other:
            other.execute(
                select(QueueEntry.patient_id)
                .where(QueueEntry.patient_id.in_(held))
                .with_for_update()
            ).all()
            done: list[Any] = []
            stored: list[tuple[int, int]] = []
            real = admission_ahead.admit_ahead

            def noting(*args: Any) -> tuple[int, int]:
                stored.append(real(*args))
                return stored[-1]

            monkeypatch.setattr(admission_ahead, "admit_ahead", noting)

            def claim() -> None:
                with closing(Claimer(engine, sessions)) as claimer:
                    done.append(
                        claimer.next(
                            user_id=agent, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE
                        )
                    )
                    # Open until the heads are judged (closing it would end that run).
                    done.append(ADMIT_AHEAD.wait_idle(60))

            worker = threading.Thread(target=claim)
            worker.start()
            worker.join(timeout=60)  # a failure detector: a claim that waited on `other` hangs
            assert not worker.is_alive()
            assert ADMIT_AHEAD.wait_idle(60)  # the heads were judged while `other` held its rows
            other.rollback()
        assert done and done[0] is not None and done[0].patient_id == pids[0] and done[1]
        assert stored == [(9, 9)]  # read and judged, all nine callable...
        live = live_admissions(sessions, DAY_AFTER)
        # ...stored but for the rows held (the claimed patient keeps the claim's own admission).
        assert set(live) == set(pids) - set(held)
    finally:
        engine.dispose()


def test_a_claim_in_the_callers_transaction_admits_ahead_only_once_it_commits(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """The console claims in its own transaction (Claimer.next_in): the heads after a full claim
    are admitted after that transaction commits, and not at all when it rolls back."""
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 6)
        amy, bob = add_agent(s, "amy"), add_agent(s, "bob")
        admit_entries(s, NOON)

    class Undone(Exception):
        pass

    with closing(Claimer(engine, sessions)) as claimer:
        with pytest.raises(Undone), transaction(sessions) as s:
            claimer.next_in(s, user_id=amy, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE)
            raise Undone
        assert live_admissions(sessions, DAY_AFTER) == {}
        with transaction(sessions) as s:
            claim = claimer.next_in(
                s, user_id=bob, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE
            )
            assert claim is not None and claim.patient_id == pids[0]
            assert live_admissions(sessions, DAY_AFTER) == {}  # nothing before its commit
        assert ADMIT_AHEAD.wait_idle(60)
        assert set(live_admissions(sessions, DAY_AFTER)) == set(pids)


def test_a_failure_admitting_ahead_never_undoes_or_fails_the_claim(
    engine: Engine,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 4)
        amy, bob = add_agent(s, "amy"), add_agent(s, "bob")

    def broken(*_: Any) -> tuple[int, int]:
        raise RuntimeError("a value that must not reach the log")

    monkeypatch.setattr(admission_ahead, "admit_ahead", broken)
    with closing(Claimer(engine, sessions)) as claimer:
        first = claimer.next(user_id=amy, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE)
        assert ADMIT_AHEAD.wait_idle(60)  # one run each (asked again before it started: one)
        with transaction(sessions) as s:
            second = claimer.next_in(
                s, user_id=bob, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE
            )
        assert ADMIT_AHEAD.wait_idle(60)  # before closing: a close drops an ask not started
    assert first is not None and second is not None
    assert (first.patient_id, second.patient_id) == (pids[0], pids[1])
    with reading(sessions) as s:
        held = dict(s.execute(select(QueueEntry.patient_id, QueueEntry.holder_id)).all())
    assert (held[pids[0]], held[pids[1]]) == (amy, bob)
    failures = [r.getMessage() for r in caplog.records if "admission ahead" in r.getMessage()]
    assert len(failures) == 2 and all("RuntimeError at " in m for m in failures)
    assert not any("must not reach" in m for m in failures)


def test_a_full_claim_returns_before_the_heads_after_it_are_judged(
    engine: Engine, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent waits for their own claim's commit only: the admission ahead it asks for runs on
    the process's admission-ahead thread (here held at its start until the claim has returned),
    and admits the heads afterwards."""
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 8)
        amy = add_agent(s, "amy")
        admit_entries(s, NOON)
    started, release = threading.Event(), threading.Event()
    threads: list[str] = []
    real = admission_ahead.admit_ahead

    def held(*args: Any) -> tuple[int, int]:
        threads.append(threading.current_thread().name)
        started.set()
        assert release.wait(60)  # a failure detector: released by the test below
        return real(*args)

    monkeypatch.setattr(admission_ahead, "admit_ahead", held)
    with closing(Claimer(engine, sessions)) as claimer:
        claim = claimer.next(user_id=amy, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE)
        # Returned while the admission ahead cannot have finished: it waits for `release`.
        assert claim is not None and claim.patient_id == pids[0] and claimer.full == 1
        assert started.wait(60)
        assert not ADMIT_AHEAD.wait_idle(0)  # still running
        assert set(live_admissions(sessions, DAY_AFTER)) == {pids[0]}  # the claim's own only
        release.set()
        assert ADMIT_AHEAD.wait_idle(60)
    assert threads == ["admission-ahead"]
    assert set(live_admissions(sessions, DAY_AFTER)) == set(pids)
    assert assert_as_the_full_check_says(sessions, DAY_AFTER) == len(pids)


def test_closing_the_claimer_ends_its_admission_ahead_between_writes(
    engine: Engine, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quitting the console does not wait on the queue's next heads: closing the Claimer while
    its admission ahead runs (held here at its start) returns without waiting for it, and the
    run then stops before its first write — the claim stands, the heads are left for the next
    claim or build to judge, nothing half-written."""
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 8)
        amy = add_agent(s, "amy")
        admit_entries(s, NOON)
    started, release = threading.Event(), threading.Event()
    real = admission_ahead.admit_ahead

    def held(*args: Any) -> tuple[int, int]:
        started.set()
        assert release.wait(60)  # a failure detector: released by the test below
        return real(*args)

    monkeypatch.setattr(admission_ahead, "admit_ahead", held)
    monkeypatch.setattr(fast_claimer, "CLOSE_WAIT_S", 0.0)  # close does not wait for `release`
    claimer = Claimer(engine, sessions)
    claim = claimer.next(user_id=amy, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE)
    assert claim is not None and claim.patient_id == pids[0]
    assert started.wait(60)
    claimer.close()  # returned while the run is still held at its start
    release.set()
    assert ADMIT_AHEAD.wait_idle(60)
    assert set(live_admissions(sessions, DAY_AFTER)) == {pids[0]}  # the claim's own only
    # The next claim runs the full check, as it would have, and asks again.
    with closing(Claimer(engine, sessions)) as again:
        bob = None
        with transaction(sessions) as s:
            bob = add_agent(s, "bob")
        nxt = again.next(user_id=bob, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE)
        assert nxt is not None and again.full == 1
        assert ADMIT_AHEAD.wait_idle(60)
    assert set(live_admissions(sessions, DAY_AFTER)) == set(pids)
