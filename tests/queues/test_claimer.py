"""The console's claims (queues.claims.fast_claimer) on SQLite and PostgreSQL: a patient admitted ahead by the
calling rules is claimed in one statement, anything else goes through the full claim, and the
admission never lets through a patient the full check would refuse at that moment."""

from __future__ import annotations

import random
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import Engine, delete, event, select, update
from sqlalchemy.orm import Session, sessionmaker

from queues.claims.admission import admit_entries, admitted_count
from queues.claims.claiming import Claim
from queues.claims.fast_claimer import Claimer, statements_warmed
from queues.compliance import patient_verdict
from queues.settings import QueueSettings
from queues.store.db import transaction
from queues.store.models import AuditEvent, Patient, Pharmacy, Phone, QueueEntry
from tests.queues.test_admission import EVENING, add_agent, add_dial, add_patient, add_pharmacy

# Wednesday 2026-12-02 12:00 in Chicago: every window of these tests is open.
NOON = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
LEASE = 300


def small_queue(s: Session, n: int) -> tuple[int, list[int]]:
    ph = add_pharmacy(s, "TXC", "America/Chicago", "TX")
    pids = [
        add_patient(
            s,
            ph,
            float(k),
            zip_code="75201",
            state="TX",
            numbers=(f"+1214555{k:04d}",),
            available_at=NOON - timedelta(hours=1),
        )
        for k in range(n)
    ]
    return ph, pids


def admitted(sessions: sessionmaker[Session], patient_id: int) -> datetime | None:
    with sessions() as s:
        return s.get_one(QueueEntry, patient_id).admitted_until


def take(claimer: Claimer, user: int, ph: int, at: datetime = NOON) -> Claim | None:
    return claimer.next(user_id=user, pharmacy_ids=[ph], now=at, lease_seconds=LEASE)


def test_a_queue_admitted_ahead_is_claimed_in_one_statement_in_order_and_audited(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 12)
        agents = [add_agent(s, f"a{k}") for k in range(12)]
        assert admit_entries(s, NOON) == 12
    with closing(Claimer(engine, sessions)) as claimer:
        got = [take(claimer, a, ph) for a in agents]
        assert [c.patient_id for c in got if c] == pids  # best sort key first, each once
        assert claimer.fast == 12 and claimer.full == 0
        assert take(claimer, add_agent_now(sessions), ph) is None  # nobody left
    with sessions() as s:
        audit = s.execute(
            select(AuditEvent.user_id, AuditEvent.patient_id).where(AuditEvent.action == "claim")
        ).all()
        assert Counter(audit) == Counter(zip(agents, pids, strict=True))
        held = s.execute(select(QueueEntry.patient_id, QueueEntry.holder_id)).all()
        assert dict(held) == dict(zip(pids, agents, strict=True))


def add_agent_now(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as s:
        return add_agent(s, "late")


def test_an_agent_who_holds_a_patient_gets_them_back_not_a_second_one(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        ph, _pids = small_queue(s, 3)
        amy = add_agent(s, "amy")
        admit_entries(s, NOON)
    with closing(Claimer(engine, sessions)) as claimer:
        first = take(claimer, amy, ph)
        again = take(claimer, amy, ph, NOON + timedelta(minutes=1))
    assert first is not None and again is not None
    assert again.resumed and again.patient_id == first.patient_id
    assert again.lease_token == first.lease_token


def test_a_claim_in_the_callers_transaction_commits_with_it_or_not_at_all(
    engine: Engine, sessions: sessionmaker[Session], request: pytest.FixtureRequest
) -> None:
    """The console claims and reads the patient's context in one transaction (next_in): the
    one statement when the head was admitted ahead, the full claim in the same transaction when
    it was not; a rollback undoes the claim and its audit row."""
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 3)
        amy, bob = add_agent(s, "amy"), add_agent(s, "bob")
        admit_entries(s, NOON)
        s.execute(
            update(QueueEntry).where(QueueEntry.patient_id == pids[1]).values(admitted_until=None)
        )
    claimer = Claimer(engine, sessions)
    request.addfinalizer(claimer.close)  # its connection back to the pool, even on a failure

    class Undone(Exception):
        pass

    try:
        with transaction(sessions) as s:
            got = claimer.next_in(s, user_id=amy, pharmacy_ids=[ph], now=NOON, lease_seconds=LEASE)
            assert got is not None and got.patient_id == pids[0]
            raise Undone
    except Undone:
        pass
    with sessions() as s:
        assert s.get_one(QueueEntry, pids[0]).holder_id is None
        assert not s.scalars(select(AuditEvent).where(AuditEvent.action == "claim")).all()
    with transaction(sessions) as s:
        first = claimer.next_in(s, user_id=amy, pharmacy_ids=[ph], now=NOON, lease_seconds=LEASE)
    with transaction(sessions) as s:  # the head's admission was cleared: the full claim
        second = claimer.next_in(s, user_id=bob, pharmacy_ids=[ph], now=NOON, lease_seconds=LEASE)
    assert first is not None and first.patient_id == pids[0]
    assert second is not None and second.patient_id == pids[1]
    assert (claimer.fast, claimer.full) == (2, 1)
    with sessions() as s:
        held = dict(s.execute(select(QueueEntry.patient_id, QueueEntry.holder_id)).all())
        assert held == {pids[0]: amy, pids[1]: bob, pids[2]: None}
        claims = s.scalars(select(AuditEvent.patient_id).where(AuditEvent.action == "claim"))
        assert sorted(claims) == sorted(pids[:2])


def test_an_expired_lease_puts_the_patient_back_first(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 3)
        amy, bob = add_agent(s, "amy"), add_agent(s, "bob")
        admit_entries(s, NOON)
    with closing(Claimer(engine, sessions)) as claimer:
        lost = take(claimer, amy, ph)
        assert lost is not None and lost.patient_id == pids[0]
        # Amy's console died; after her lease the patient is the best one again, for Bob.
        back = take(claimer, bob, ph, NOON + timedelta(seconds=LEASE + 1))
    assert back is not None and back.patient_id == pids[0] and not back.resumed


def test_a_change_to_what_the_rules_read_clears_the_admission_at_once(
    sessions: sessionmaker[Session],
) -> None:
    """Triggers, not callers, keep the admission honest: every writer is covered."""
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 6)
        _other_ph, (other,) = small_queue_in(s, "TXD")
        amy = add_agent(s, "amy")
        admit_entries(s, NOON)
    assert all(admitted(sessions, p) for p in [*pids, other])
    changes = [
        (
            pids[0],
            lambda s: s.execute(
                update(Patient).where(Patient.id == pids[0]).values(do_not_call=True)
            ),
        ),
        (
            pids[1],
            lambda s: s.execute(
                update(Patient).where(Patient.id == pids[1]).values(zip_code="33101")
            ),
        ),
        (
            pids[2],
            lambda s: s.add(Phone(patient_id=pids[2], number="+13055550123", kind="cell", rank=1)),
        ),
        (pids[3], lambda s: s.execute(delete(Phone).where(Phone.patient_id == pids[3]))),
        (pids[4], lambda s: add_dial(s, pids[4], amy, NOON - timedelta(hours=1), "no_answer")),
        (
            pids[5],
            lambda s: s.execute(
                update(Phone).where(Phone.patient_id == pids[5]).values(wrong_number=True)
            ),
        ),
    ]
    for pid, change in changes:
        with transaction(sessions) as s:
            change(s)
        assert admitted(sessions, pid) is None, pid
    # An update that changes nothing the rules read leaves the admission alone.
    with transaction(sessions) as s:
        s.execute(update(Patient).where(Patient.id == other).values(first_name="Renamed"))
    assert admitted(sessions, other) is not None
    # The pharmacy's hours: every patient of that pharmacy, nobody else's.
    with transaction(sessions) as s:
        admit_entries(s, NOON)
        s.execute(update(Pharmacy).where(Pharmacy.id == ph).values(opens_at=time(9)))
    assert [p for p in pids if admitted(sessions, p)] == []
    assert admitted(sessions, other) is not None


def small_queue_in(s: Session, code: str) -> tuple[int, list[int]]:
    ph = add_pharmacy(s, code, "America/Chicago", "TX")
    pid = add_patient(
        s,
        ph,
        100.0,
        zip_code="75201",
        state="TX",
        numbers=("+12145559999",),
        available_at=NOON - timedelta(hours=1),
    )
    return ph, [pid]


def test_a_patient_whose_admission_was_cleared_gets_the_full_check(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 3)
        amy = add_agent(s, "amy")
        admit_entries(s, NOON)
        s.execute(update(Patient).where(Patient.id == pids[0]).values(do_not_call=True))
    with closing(Claimer(engine, sessions)) as claimer:
        got = take(claimer, amy, ph)
    assert got is not None and got.patient_id == pids[1]  # the do-not-call patient passed over
    assert claimer.full == 1
    with sessions() as s:
        assert s.get_one(QueueEntry, pids[0]).blocked_reason == "dnc_patient"


def test_other_site_limits_do_not_use_an_admission_made_under_these(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """The site narrows its calling window to 13:00: an admission made under 08-21 is not used."""
    with transaction(sessions) as s:
        ph, _pids = small_queue(s, 2)
        amy = add_agent(s, "amy")
        admit_entries(s, NOON)
    narrow = QueueSettings(calling_window_start="13:00")
    with closing(Claimer(engine, sessions, narrow)) as claimer:
        assert take(claimer, amy, ph) is None  # 12:00 in Chicago
    assert claimer.fast == 0
    with sessions() as s:
        assert admitted_count(s, NOON, narrow) == 0
        assert admitted_count(s, NOON, QueueSettings()) == 2


def test_an_admission_holds_only_between_its_check_and_the_first_window_to_close(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 2)
        amy = add_agent(s, "amy")
        admit_entries(s, NOON)
    until = admitted(sessions, pids[0])
    # The pharmacy (test helper: 07:00–22:00 Chicago) closes after the federal window (21:00).
    assert until == datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 21:00 CST
    with closing(Claimer(engine, sessions)) as claimer:
        # Before the check was made (a practice clock set back) and after the window closed: no.
        assert take(claimer, amy, ph, NOON - timedelta(hours=5)) is None  # 07:00 CST, closed
        assert take(claimer, amy, ph, until) is None
    assert claimer.fast == 0


def test_an_admission_is_never_wider_than_the_full_check(
    sessions: sessionmaker[Session],
) -> None:
    """For a mixed population (zones, ported cells, best times, flags, dials), at many instants:
    every patient the one-statement claim may take then is callable by the full check then."""
    rng = random.Random(7)
    places = [
        ("75201", "TX", "+1214555"),
        ("33101", "FL", "+1305555"),
        ("85001", "AZ", "+1602555"),
        ("10001", "NY", "+1212555"),
        ("98101", "WA", "+1206555"),
    ]
    with transaction(sessions) as s:
        phs = [
            add_pharmacy(s, "P1", "America/Chicago", "TX"),
            add_pharmacy(s, "P2", "America/New_York", "FL", {"no_calls_on_sundays": True}),
            add_pharmacy(s, "P3", "America/Phoenix", "AZ", {"calling_window_end": "19:00"}),
        ]
        amy = add_agent(s, "amy")
        pids = []
        for k in range(60):
            zip_code, state, _ = rng.choice(places)
            numbers = tuple(
                f"{rng.choice(places)[2]}{rng.randint(0, 9999):04d}"
                for _ in range(rng.randint(0, 2))
            )
            pid = add_patient(
                s,
                rng.choice(phs),
                float(k),
                zip_code=zip_code,
                state=state,
                numbers=numbers,
                available_at=EVENING - timedelta(days=2),
            )
            if numbers and rng.random() < 0.3:
                s.execute(
                    update(Phone)
                    .where(Phone.patient_id == pid)
                    .values(best_time=rng.choice(["mornings", "after 5pm", "9-11am"]))
                )
            if rng.random() < 0.1:
                s.execute(update(Patient).where(Patient.id == pid).values(do_not_call=True))
            pids.append(pid)
    start = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # 06:00 Chicago, Wednesday
    seen_live = seen_refused = 0
    for hour in range(0, 30, 3):
        at = start + timedelta(hours=hour, minutes=rng.randint(0, 59))
        with transaction(sessions) as s:
            if hour == 9:  # someone was called: their admission must not cover the cap
                add_dial(s, pids[1], amy, at - timedelta(minutes=5), "connected")
            admit_entries(s, at)
        for later in (timedelta(0), timedelta(minutes=47), timedelta(hours=2, minutes=13)):
            when = at + later
            with sessions() as s:
                live = s.scalars(
                    select(QueueEntry.patient_id).where(
                        QueueEntry.admitted_at <= when,
                        QueueEntry.admitted_until > when,
                        QueueEntry.admitted_key.is_not(None),
                    )
                ).all()
                for pid in live:
                    verdict = patient_verdict(s, pid, when)
                    assert verdict.callable, (pid, when, verdict.codes)
                seen_live += len(live)
                seen_refused += len(pids) - len(live)
    # The population is mixed enough that both answers occur, at some instants.
    assert seen_live and seen_refused


def test_a_file_another_writer_holds_is_reported_busy_after_one_wait(
    sqlite_url: str,
) -> None:
    """SQLite: a queue build or an import holds the write lock past busy_timeout. The agent is
    told the database is busy after one wait, not two (the full claim would wait for the same
    lock), nobody is claimed, and the next claim once the lock is free takes the head."""
    from queues.errors import DatabaseBusy
    from queues.store.db import make_engine, session_factory, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 3)
        agent = add_agent(s, "busy")
        admit_entries(s, NOON)
    claimer = Claimer(engine, sessions)
    statements_warmed(engine).wait()  # its warm-up writes nothing, but takes the lock a moment
    # The product waits 10 s (queues.store.db); what is checked is one wait, not two, so the
    # connections made from here on wait 0.5 s (after the product's own pragmas).
    engine.dispose()
    event.listen(engine, "connect", lambda conn, _record: conn.execute("PRAGMA busy_timeout=500"))
    other = engine.raw_connection()
    try:
        other.driver_connection.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
        try:
            take(claimer, agent, ph)
        except DatabaseBusy as exc:
            assert "is busy with another writer" in str(exc)
        else:
            raise AssertionError("a claim went through a write lock another connection holds")
        assert (claimer.fast, claimer.full) == (0, 0)  # no second wait in the full claim
        other.driver_connection.execute("ROLLBACK")
        got = take(claimer, agent, ph)
        assert got is not None and got.patient_id == pids[0]
    finally:
        other.close()
        claimer.close()
        engine.dispose()


def test_reads_go_on_while_another_writer_holds_the_file(sqlite_url: str) -> None:
    """SQLite (WAL): while a queue build holds the write lock, a read-only session (the floor,
    a patient's context, why the queue is empty) reads the last committed state at once; only
    writers wait."""
    from queues.store.db import make_engine, reading, session_factory, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        small_queue(s, 3)
    other = engine.raw_connection()
    try:
        other.driver_connection.execute("BEGIN IMMEDIATE")
        other.driver_connection.execute("UPDATE queue_entries SET status = 'done'")  # uncommitted
        with reading(sessions) as s:  # before: a 10 s wait, then "busy"
            assert s.scalars(select(QueueEntry.status)).all() == ["open"] * 3
    finally:
        other.driver_connection.execute("ROLLBACK")
        other.close()
        engine.dispose()


def test_a_postgres_claim_reads_no_more_of_the_queue_when_many_patients_are_held(
    pg_url: str,
) -> None:
    """Half the queue held (leases running) and half claimable, as the server's statistics then
    say: the planner guessed that some held patient was likely due back and looked for one by
    reading every row of the queue — the one statement's "is anyone due to wake?" check became a
    scan of the whole table in every claim (2.7 s a claim at 1,000,000 entries; claims fell from
    ~1,250 to ~22 a second once autovacuum's ANALYZE ran). The check now asks the wake index for
    its earliest row, whatever the estimates."""
    from queues.store.db import make_engine, session_factory, upgrade

    engine = make_engine(pg_url)
    upgrade(engine)
    sessions = session_factory(engine)
    claimer = Claimer(engine, sessions)
    try:
        with transaction(sessions) as s:
            ph, (first,) = small_queue(s, 1)
            holder, agent = add_agent(s, "held"), add_agent(s, "next")
        clone = [c.name for c in Patient.__table__.columns if c.name not in ("id", "mrn")]
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO patients (mrn, {', '.join(clone)}) "
                f"SELECT p.mrn || '-' || g, {', '.join('p.' + c for c in clone)} "
                "FROM patients p, generate_series(1, 20000) g"
            )
            # Even ids held (claimed at NOON - 1 min, lease to NOON + 4 min); odd ids claimable.
            conn.exec_driver_sql(
                "INSERT INTO queue_entries (patient_id, pharmacy_id, status, sort_key, "
                "available_at, holder_id, lease_token, claimed_at, lease_expires_at) "
                "SELECT id, pharmacy_id, 'open', id, CASE WHEN id %% 2 = 0 THEN %(expires)s "
                "ELSE %(due)s END, CASE WHEN id %% 2 = 0 THEN %(holder)s END, "
                "CASE WHEN id %% 2 = 0 THEN 'lease' END, CASE WHEN id %% 2 = 0 THEN %(claimed)s "
                "END, CASE WHEN id %% 2 = 0 THEN %(expires)s END FROM patients WHERE id <> %(first)s",
                {
                    "expires": (NOON + timedelta(minutes=4)).replace(tzinfo=None),
                    "due": (NOON - timedelta(hours=1)).replace(tzinfo=None),
                    "claimed": (NOON - timedelta(minutes=1)).replace(tzinfo=None),
                    "holder": holder,
                    "first": first,
                },
            )
        with transaction(sessions) as s:
            admit_entries(s, NOON)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE queue_entries")
            sql, params = claimer._statement(
                agent, [ph], NOON, NOON + timedelta(seconds=LEASE), "t"
            )
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, params))
        assert "Seq Scan" not in plan, plan
        got = take(claimer, agent, ph)
        assert got is not None and got.patient_id == first  # the head, in one statement
        assert claimer.fast == 1
    finally:
        claimer.close()
        engine.dispose()
