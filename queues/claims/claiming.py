"""Claiming a patient under a lease: at most one agent holds a patient at a time.

PostgreSQL picks the head row with `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on
each other's row; SQLite serializes writers with `BEGIN IMMEDIATE` (see queues.store.db), so a short
write transaction is atomic. A lease sets `available_at` to its expiry: a console killed mid-call
gives its patient back when the lease runs out, with no sweeper process.

The open entries live in two partial indexes (models.CLAIMABLE, models.WAITING_TO_WAKE): the head
query reads only rows nobody holds, nobody just called and no rule passed over, so it never walks
past held patients. Held (`claimed_at` set) and passed-over (`blocked_reason` set) rows come back
through the wake step at the start of a claim, once their `available_at` has passed: that is how
an expired lease puts its patient back (its token is cleared, so the dead console's next heartbeat
or save gets LeaseLost), and how a retry, a callback or a lifted block becomes claimable again.

Claims run on every console's "next", so the hot path is prebuilt Core statements on the
session's connection: the head row comes with the patient's compliance facts in one query, and on
PostgreSQL the claim and its audit row are one statement.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NamedTuple, cast

from sqlalchemy import (
    JSON,
    Connection,
    Executable,
    Integer,
    String,
    Table,
    bindparam,
    exists,
    insert,
    literal_column,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from queues.audit import record
from queues.claims.admission import admission_key
from queues.compliance.patient import PATIENT_COLUMNS, admit_prefetched
from queues.compliance.patient import check_at_dial as verdict_at_dial
from queues.compliance.verdict import Verdict
from queues.errors import LeaseLost, NotCallable
from queues.settings import QueueSettings
from queues.store.db import READ_ONLY, transaction
from queues.store.models import (
    Attempt,
    AuditEvent,
    Patient,
    Pharmacy,
    Phone,
    QueueEntry,
    Task,
)
from queues.timeutil import UTCDateTime, as_utc, utcnow
from queues.views.shift import Claim as Claim  # re-exported: callers name it here

# Given a patient id, raise NotCallable to skip them for now (compliance at claim time).
Admission = Callable[[Session, int, datetime], None]
# `admit=COMPLIANCE` (the default): the calling rules of queues.compliance; None: no check at all
# (the bare dequeue benchmarks compare against).
COMPLIANCE: Final = "compliance"
# Patients passed over in one claim before giving up for now; each one passed over is moved to
# when they open, so the next claim starts further down (a whole zone asleep costs a few claims).
MAX_SKIPS = 200
# Rows the wake step puts back per claim. A claim that wakes a whole batch has more due behind it
# (a zone's passed-over rows at 08:00, the leases of a day gone by): it says so (`backlog`) and the
# process wakes the rest off the claimers' path, WAKE_CHUNK rows a transaction (wake_due), so the
# claims after it are the one statement again instead of each waking a batch more.
WAKE_BATCH = 200
# PostgreSQL: 2,000 rows ~40-70 ms, on rows no claim waits for (SKIP LOCKED). SQLite: each chunk
# holds the write lock (1,000 rows 15-26 ms and a 2.5-6.8 ms commit at 100k), but while any row is
# due every claim is the full one anyway; in chunks of a claim's own batch (200) the thread lost
# the lock to the claims' wake steps, each sleeping in the busy handler between tries (400 rows
# woken in 214 ms; 2,000-row chunks: 3,400 in 109 ms).
WAKE_CHUNK = {True: 2_000, False: 1_000}
# The compliance facts look back this far for dials (queues.compliance.patient._DIALS).
DIAL_LOOKBACK = timedelta(days=7)


# ---------------------------------------------------------------------------------------------
# Prebuilt statements (compiled once per dialect by SQLAlchemy's cache; only values change).

_qe = cast(Table, QueueEntry.__table__)
_patients, _pharmacies = cast(Table, Patient.__table__), cast(Table, Pharmacy.__table__)
_phones, _attempts = cast(Table, Phone.__table__), cast(Table, Attempt.__table__)
_audit = cast(Table, AuditEvent.__table__)
_UTC = UTCDateTime()
# A literal, not a bound value: the planners match it against the partial indexes' predicates.
_OPEN: ColumnElement[str] = literal_column("'open'", String)

_HELD_WHERE = "holder_id = :user AND status = 'open' AND lease_expires_at > :now LIMIT 1"
_HELD_COLUMNS = "SELECT patient_id, lease_token, claimed_at, lease_expires_at FROM queue_entries"


def _held(postgres: bool) -> Executable:
    # SQLite's statistics see a column of NULLs (nobody holds anybody after a rebuild) and would
    # scan the table: name the index, which is right at any fill.
    table = "" if postgres else " INDEXED BY ix_queue_entries_holder"
    return (
        text(f"{_HELD_COLUMNS}{table} WHERE {_HELD_WHERE}")
        .bindparams(bindparam("user", type_=Integer), bindparam("now", type_=_UTC))
        .columns(patient_id=Integer, lease_token=String, claimed_at=_UTC, lease_expires_at=_UTC)
    )


# The predicate of ix_queue_entries_wake, spelled as the index spells it (models.WAITING_TO_WAKE).
_WAITING = (
    _qe.c.status == _OPEN,
    or_(_qe.c.claimed_at.is_not(None), _qe.c.blocked_reason.is_not(None)),
)


def _wake(postgres: bool, rows: int = WAKE_BATCH) -> Executable:
    due = (
        select(_qe.c.patient_id)
        .where(*_WAITING, _qe.c.available_at <= bindparam("now", type_=_UTC))
        .order_by(_qe.c.available_at)
        .limit(rows)  # a literal: each size is a statement of its own, planned for it
    )
    if postgres:  # a row another claimer is waking or claiming right now is theirs
        due = due.with_for_update(skip_locked=True)
    return (
        update(_qe)
        .where(_qe.c.patient_id.in_(due.scalar_subquery()))
        .values(
            holder_id=null(),
            lease_token=null(),
            lease_expires_at=null(),
            claimed_at=null(),
            blocked_reason=null(),
        )
    )


def _head(postgres: bool) -> Any:
    available = _qe.c.available_at
    # The predicate of ix_queue_entries_claimable (models.CLAIMABLE), then what the agent may take.
    query = (
        select(_qe.c.patient_id)
        .where(
            _qe.c.status == _OPEN,
            _qe.c.claimed_at.is_(None),
            _qe.c.blocked_reason.is_(None),
            # On SQLite a unary + keeps the planner off ix_queue_entries_waiting, whose range on
            # available_at (then a sort of every due row) it prefers to walking the claimable
            # index in order, which stops at the first row: ms against µs per claim.
            (available if postgres else literal_column("+queue_entries.available_at", _UTC))
            <= bindparam("now", type_=_UTC),
            _qe.c.pharmacy_id.in_(bindparam("ids", expanding=True)),
            # A "mine" callback waits for its owner until its grace period ends.
            or_(
                _qe.c.reserved_for_id.is_(None),
                _qe.c.reserved_for_id == bindparam("user"),
                _qe.c.reserved_until <= bindparam("now", type_=_UTC),
            ),
        )
        .order_by(_qe.c.sort_key, _qe.c.patient_id)
        .limit(1)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    return query


def _head_with_facts(postgres: bool) -> Executable:
    """The head row joined with what the compliance admission reads: patient with pharmacy, one
    row per phone in rank order, and whether anyone dialed them in the lookback (rarely true;
    only then does the admission read the attempts)."""
    head = _head(postgres).subquery("head")
    dialed = exists().where(
        _attempts.c.patient_id == head.c.patient_id,
        _attempts.c.started_at > bindparam("since", type_=_UTC),
    )
    return (
        select(
            head.c.patient_id,
            *PATIENT_COLUMNS,
            dialed.label("dialed"),
            _phones.c.number,
            _phones.c.best_time,
            _phones.c.wrong_number,
            _phones.c.do_not_call.label("phone_do_not_call"),
        )
        .select_from(
            head.join(_patients, _patients.c.id == head.c.patient_id)
            .join(_pharmacies, _pharmacies.c.id == _patients.c.pharmacy_id)
            .outerjoin(_phones, _phones.c.patient_id == head.c.patient_id)
        )
        .order_by(_phones.c.rank, _phones.c.id)
    )


_PASS_OVER = (
    update(_qe)
    .where(_qe.c.patient_id == bindparam("pid"))
    .values(available_at=bindparam("later", type_=_UTC), blocked_reason=bindparam("code"))
)
_TAKE_VALUES = dict(
    holder_id=bindparam("user", type_=Integer),
    lease_token=bindparam("token", type_=String),
    claimed_at=bindparam("now", type_=_UTC),
    lease_expires_at=bindparam("expires", type_=_UTC),
    available_at=bindparam("expires", type_=_UTC),
    blocked_reason=null(),
    # The check just made, kept for the next claim of this patient (queues.claims.admission).
    admitted_at=bindparam("now", type_=_UTC),
    admitted_until=bindparam("admitted_until", type_=_UTC),
    admitted_key=bindparam("admitted_key", type_=String),
)
_TAKE = update(_qe).where(_qe.c.patient_id == bindparam("pid")).values(**_TAKE_VALUES)


def _take_and_audit() -> Executable:
    """PostgreSQL: the claim and its audit row in one statement (one round trip)."""
    taken = (
        update(_qe)
        .where(_qe.c.patient_id == bindparam("pid"))
        .values(**_TAKE_VALUES)
        .returning(_qe.c.patient_id)
        .cte("taken")
    )
    return insert(_audit).from_select(
        ["at", "user_id", "action", "patient_id", "detail"],
        select(
            bindparam("at", type_=_UTC),
            bindparam("user", type_=Integer),
            literal_column("'claim'", String),
            taken.c.patient_id,
            bindparam("detail", type_=JSON),
        ),
    )


class _Statements(NamedTuple):
    postgres: bool
    held: Executable
    wake: Executable
    head: Executable
    head_with_facts: Executable
    take: Executable  # the claim and its audit row (on SQLite by trigger, migration 0009)


_STATEMENTS = {
    postgres: _Statements(
        postgres,
        _held(postgres),
        _wake(postgres),
        _head(postgres),
        _head_with_facts(postgres),
        _take_and_audit() if postgres else _TAKE,
    )
    for postgres in (False, True)
}


_WAKE_CHUNKS = {postgres: _wake(postgres, WAKE_CHUNK[postgres]) for postgres in (False, True)}
_NEVER: Final = datetime(2000, 1, 1, tzinfo=UTC)


def warm_claim_statements(engine: Engine) -> None:
    """Have SQLAlchemy compile the full claim's statements for this engine now, on the caller's
    thread (a Claimer's background one), not in the first full claim: ~8 ms of a process's
    first, paid by every console at once on a new day, when each first finds its head's
    admission stale. Each runs once with values that match no row, in a transaction rolled back
    at once: nothing is read or written (on SQLite an UPDATE holds the write lock only while it
    finds nothing). The parameters are named as claim_next names them: the cache's key."""
    sql = _STATEMENTS[engine.dialect.name == "postgresql"]
    now, nobody = _NEVER, -1
    head = {"now": now, "ids": [nobody], "user": nobody, "since": now}
    reads: list[tuple[Executable, dict[str, Any]]] = [
        (sql.held, {"user": nobody, "now": now}),
        (sql.head_with_facts, head),
    ]
    writes: list[tuple[Executable, dict[str, Any]]] = [
        (sql.wake, {"now": now}),
        (_PASS_OVER, {"pid": nobody, "later": now, "code": "warm"}),
        (
            sql.take,
            {
                "pid": nobody,
                "user": nobody,
                "token": "",
                "now": now,
                "expires": now,
                "at": now,
                "detail": {},
                "admitted_until": None,
                "admitted_key": None,
            },
        ),
    ]
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        for statement, params in reads:
            conn.execute(statement, params)
        conn.rollback()
    for write, values in writes:  # each alone: a write lock held for one empty statement
        with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            conn.execute(write, values)
            conn.rollback()


class _PhoneRow(NamedTuple):
    number: str
    best_time: str | None
    wrong_number: bool
    do_not_call: bool


def _pick(
    conn: Connection, sql: _Statements, params: dict[str, Any], facts: bool
) -> tuple[int, Any, list[_PhoneRow], bool] | None:
    """The head patient id (locked on PostgreSQL), with their compliance facts when asked."""
    if not facts:
        pid = conn.execute(sql.head, params).scalar()
        return None if pid is None else (pid, None, [], False)
    rows = conn.execute(sql.head_with_facts, params).all()
    if not rows:
        return None
    first = rows[0]
    phones = [
        _PhoneRow(r.number, r.best_time, bool(r.wrong_number), bool(r.phone_do_not_call))
        for r in rows
        if r.number is not None
    ]
    return first.patient_id, first, phones, bool(first.dialed)


def new_lease_token() -> str:
    """A claim's lease token: 128 random bits as 32 hex digits (a heartbeat or an outcome must
    present it; str(uuid.uuid4()) cost a claim six times as much under the GIL)."""
    return os.urandom(16).hex()


def claim_next(
    session: Session,
    *,
    user_id: int,
    pharmacy_ids: Sequence[int],
    now: datetime,
    lease_seconds: int,
    admit: Admission | Literal["compliance"] | None = COMPLIANCE,
    settings: QueueSettings | None = None,
    backlog: Callable[[], None] | None = None,
) -> Claim | None:
    """Claim the best next patient for the user, or None when nothing is claimable now.

    Runs in the caller's transaction; commit promptly (the row lock is held until then). An agent
    who already holds a live lease gets that patient back instead of a second one. A patient the
    calling rules forbid now is passed over: `blocked_reason` says why and `available_at` moves to
    when they open (`settings` carries the site's limits; each pharmacy may tighten them).
    `backlog` is called, in the claim, when its wake step put back a whole WAKE_BATCH: more rows
    may be due, for `wake_due` to put back (fast_claimer.Claimer has its process do so at once).
    """
    conn = session.connection()
    sql = _STATEMENTS[conn.dialect.name == "postgresql"]
    held = conn.execute(sql.held, {"user": user_id, "now": now}).first()
    if held is not None:
        return Claim(
            held.patient_id,
            held.lease_token,
            as_utc(held.claimed_at),
            as_utc(held.lease_expires_at),
            resumed=True,
        )
    if not pharmacy_ids:
        return None
    if conn.execute(sql.wake, {"now": now}).rowcount >= WAKE_BATCH and backlog is not None:
        backlog()
    compliance = admit == COMPLIANCE
    params = {"now": now, "ids": list(pharmacy_ids), "user": user_id, "since": now - DIAL_LOOKBACK}
    for _ in range(MAX_SKIPS):
        picked = _pick(conn, sql, params, compliance)
        if picked is None:
            return None
        patient_id, head, phones, dialed = picked
        admitted_until: datetime | None = None
        try:
            if compliance:
                verdict = admit_prefetched(session, patient_id, head, phones, dialed, now, settings)
                admitted_until = verdict.open_until
            elif callable(admit):
                admit(session, patient_id, now)
        except NotCallable as why:
            later = why.next_open_at or now + timedelta(hours=1)
            conn.execute(
                _PASS_OVER,
                {
                    "pid": patient_id,
                    "later": max(later, now + timedelta(minutes=1)),
                    "code": why.code,
                },
            )
            continue
        token = new_lease_token()
        expires = now + timedelta(seconds=lease_seconds)
        take = {
            "pid": patient_id,
            "user": user_id,
            "token": token,
            "now": now,
            "expires": expires,
            "at": utcnow(),
            "detail": {},
            "admitted_until": admitted_until,
            "admitted_key": admission_key(settings or QueueSettings()) if admitted_until else None,
        }
        conn.execute(sql.take, take)
        return Claim(patient_id, token, now, expires)
    return None


def wake_due(
    sessions: sessionmaker[Session], now: datetime, stop: Callable[[], bool] = lambda: False
) -> int:
    """Put back every held or passed-over row due by `now`, as a claim's wake step does, in
    transactions of WAKE_CHUNK rows (on PostgreSQL rows another claim is waking or taking are
    skipped: they are that claim's); returns how many. Ends when a chunk finds fewer than it may
    take, or between two chunks when `stop()` is true."""
    bind = sessions.kw.get("bind")
    postgres = bind is not None and bind.dialect.name == "postgresql"
    chunk = WAKE_CHUNK[postgres]
    statement = _WAKE_CHUNKS[postgres]
    woken = 0
    while not stop():
        with transaction(sessions) as session:
            rows = session.connection().execute(statement, {"now": now}).rowcount
        woken += rows
        if rows < chunk:
            break
    return woken


def _locked_entry(session: Session, patient_id: int, token: str) -> QueueEntry:
    query = select(QueueEntry).where(
        QueueEntry.patient_id == patient_id, QueueEntry.lease_token == token
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    entry = session.scalar(query)
    if entry is None:
        raise LeaseLost(patient_id)
    return entry


def renew_lease(
    session: Session, patient_id: int, token: str, now: datetime, lease_seconds: int
) -> datetime:
    """The heartbeat: push the lease out. Raises LeaseLost when another console took the patient."""
    entry = _locked_entry(session, patient_id, token)
    entry.lease_expires_at = entry.available_at = now + timedelta(seconds=lease_seconds)
    return entry.lease_expires_at


def release(session: Session, patient_id: int, token: str, now: datetime, user_id: int) -> None:
    """Give the patient back untouched (the agent skipped without dialing)."""
    entry = _locked_entry(session, patient_id, token)
    entry.holder_id = None
    entry.lease_token = None
    entry.lease_expires_at = None
    entry.claimed_at = None  # claimable at once, no wake needed
    entry.available_at = now
    record(session, "release", user_id=user_id, patient_id=patient_id)


def lock_for_outcome(session: Session, patient_id: int, token: str) -> QueueEntry:
    """The entry, locked, when `token` still holds it (else LeaseLost): outcomes start here."""
    return _locked_entry(session, patient_id, token)


def open_task_ids(session: Session, patient_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Task.id)
            .where(Task.patient_id == patient_id, Task.status == "open")
            .order_by(Task.id)
        )
    )


def check_at_dial(
    session: Session,
    patient_id: int,
    number: str,
    now: datetime,
    settings: QueueSettings | None = None,
) -> Verdict:
    """The second check, the moment before dialing `number`: raises NotCallable (code, sentence,
    next_open_at) when the call may not go out now (the window closed while the agent read, the
    patient opted out on another line, the number was flagged, a cap was reached). Returns the
    callable verdict: its `open_until` is when the number's calling window closes."""
    return verdict_at_dial(session, patient_id, number, now, settings)
