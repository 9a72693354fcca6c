"""The claim-time compliance check, done ahead: which queued patients are callable now, and until when.

A claim must never hand out a patient the calling rules forbid. Running the full check
(queues.compliance) inside every claim costs far more than the claim itself, so its answer is kept on
the queue entry: from `admitted_at` (when it was checked) to `admitted_until` (the first of the
patient's open windows to close), under
`admitted_key` (the site limits and rules it was checked under). The claim takes a head row with a
live admission in one statement and runs the full check only otherwise (queues.claims.claiming).

The admission stays true because:
- time: it ends when the first window that was open closes (a Sunday or holiday starts at midnight);
- facts: database triggers (migration 0009) clear it when the patient's address, flags or consent,
  their phones, their attempts (caps) or their pharmacy's hours or limits change;
- settings: a change of the site's limits or of these rules changes the key;
- and the dial-time check (queues.compliance.check_at_dial) runs in full before every call anyway.

A build writes each new entry with its admission (`read_undialed`, `Judge`), then `admit_entries`
fills it for the rest of the queue. Patients dialed in the last week are left to the claim's full
check (their caps need their attempts); everyone else is judged by what
decides the verdict — pharmacy, address, where each number is, best times, flags — so a queue of a
million patients costs a few thousand evaluations.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, time, timedelta
from typing import Any, Final, NamedTuple, cast

from sqlalchemy import (
    Float,
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from queues.building.scope import in_scope
from queues.compliance.check import evaluate
from queues.compliance.limits import site_limits
from queues.compliance.patient import PATIENT_COLUMNS, hours_of, limits_of, undialed_facts
from queues.compliance.zones import place_of_zip, where_of_number
from queues.settings import QueueSettings
from queues.store.db import reading
from queues.store.models import Attempt, Patient, Pharmacy, Phone, QueueEntry
from queues.timeutil import UTCDateTime, as_utc, sqlite_text, utcnow

# Bump when the calling rules change in a way a stored admission could not know about.
RULES_VERSION: Final = "2026-11-30"
# The check reads a week of dials; a patient dialed within it is checked in full at the claim.
DIAL_LOOKBACK: Final = timedelta(days=7)
CHUNK: Final = 20_000  # entries read per query (keyset on patient_id)
WRITE_CHUNK: Final = 10_000

_qe = cast(Table, QueueEntry.__table__)
_patients, _pharmacies = cast(Table, Patient.__table__), cast(Table, Pharmacy.__table__)
_phones, _attempts = cast(Table, Phone.__table__), cast(Table, Attempt.__table__)
_UTC = UTCDateTime()


def admission_key(settings: QueueSettings) -> str:
    """Names the site limits and rules an admission was made under (16 hex digits)."""
    text = f"{RULES_VERSION}|{site_limits(settings)!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _dialed_since(since: Any, patient_id: Any = _qe.c.patient_id) -> Any:
    return exists().where(_attempts.c.patient_id == patient_id, _attempts.c.started_at > since)


def _waiting_where(key: str) -> tuple[Any, ...]:
    """Open, claimable entries (the predicate of ix_queue_entries_claimable) without a live
    admission under `key`, nobody dialed in the lookback."""
    now = bindparam("now", type_=_UTC)
    return (
        _qe.c.status == "open",
        _qe.c.claimed_at.is_(None),
        _qe.c.blocked_reason.is_(None),
        or_(
            _qe.c.admitted_until.is_(None),
            _qe.c.admitted_until <= now,
            _qe.c.admitted_at > now,
            _qe.c.admitted_key != key,
            _qe.c.admitted_key.is_(None),
        ),
        ~_dialed_since(bindparam("since", type_=_UTC)),
    )


_WAITING_FROM = _qe.join(_patients, _patients.c.id == _qe.c.patient_id).join(
    _pharmacies, _pharmacies.c.id == _patients.c.pharmacy_id
)


def _waiting_query(key: str, pharmacy_ids: Sequence[int] | None, scoped: bool = False) -> Any:
    """Waiting entries (`_waiting_where`) in patient_id order, CHUNK after `after`."""
    query = (
        select(_qe.c.patient_id, *PATIENT_COLUMNS)
        .select_from(_WAITING_FROM)
        .where(*_waiting_where(key), _qe.c.patient_id > bindparam("after"))
        .order_by(_qe.c.patient_id)
        .limit(CHUNK)
    )
    if pharmacy_ids is not None:
        query = query.where(_qe.c.pharmacy_id.in_(list(pharmacy_ids)))
    if scoped:
        query = query.where(in_scope(_qe.c.patient_id))
    return query


def _claim_order_query(key: str, *, after: bool) -> Any:
    """Waiting entries in the order claims take them (sort_key, patient_id: the order of
    ix_queue_entries_claimable, whose predicate `_waiting_where` repeats), `n` of them; with
    `after`, those past (`after_key`, `after`) — a keyset on a row value (SQLite >= 3.15,
    PostgreSQL), which both walk as a range of that index."""
    query = (
        select(_qe.c.patient_id, _qe.c.sort_key, *PATIENT_COLUMNS)
        .select_from(_WAITING_FROM)
        .where(*_waiting_where(key))
        .order_by(_qe.c.sort_key, _qe.c.patient_id)
        .limit(bindparam("n", type_=Integer))
    )
    if after:
        query = query.where(
            tuple_(_qe.c.sort_key, _qe.c.patient_id)
            > tuple_(bindparam("after_key", type_=Float), bindparam("after", type_=Integer))
        )
    return query


_PHONES = select(
    _phones.c.patient_id,
    _phones.c.number,
    _phones.c.best_time,
    _phones.c.wrong_number,
    _phones.c.do_not_call,
).order_by(_phones.c.patient_id, _phones.c.rank, _phones.c.id)
# A chunk's id range (its entries come in patient_id order): no list of ids to bind; phones of
# patients in the range but not in the chunk are read and ignored.
_PHONES_OF = _PHONES.where(_phones.c.patient_id.between(bindparam("first"), bindparam("last")))
_PHONES_IN = _PHONES.where(_phones.c.patient_id.in_(bindparam("ids", expanding=True)))


class Head(NamedTuple):
    """A patient as the verdict reads them: patient_id and PATIENT_COLUMNS, in that order. Rows
    are made into these where many are judged at once: a tuple's fields read in nanoseconds, a
    SQLAlchemy Row's attributes in about half a microsecond each, and a build reads ten a patient."""

    patient_id: int
    zip_code: str | None
    state: str | None
    do_not_call: bool
    deceased: bool
    consent_to_call: bool | None
    code: str
    timezone: str
    opens_at: time
    closes_at: time
    calling_limits: Any


class PhoneRow(NamedTuple):
    """A phone as `_PHONES` reads it."""

    patient_id: int
    number: str
    best_time: str | None
    wrong_number: bool
    do_not_call: bool


# Made from rows by position: each must name what its query selects, in that order.
if Head._fields[1:] != tuple(c.name for c in PATIENT_COLUMNS) or PhoneRow._fields != tuple(
    c.name for c in _PHONES.selected_columns
):  # pragma: no cover
    raise RuntimeError("queues.claims.admission: Head or PhoneRow out of step with its query")


def _heads(rows: Sequence[Any]) -> list[Head]:
    """Rows of patient_id and PATIENT_COLUMNS as Heads."""
    make = Head._make
    return [make(row) for row in rows]


def _shape(head: Any, phones: Sequence[Any]) -> tuple[Any, ...]:
    """Everything the verdict of an undialed patient depends on, with each number replaced by where
    it is: patients with equal shapes get equal verdicts (numbers aside)."""
    zip_place = place_of_zip(head.zip_code or "")
    return (
        head.code,
        head.timezone,
        head.opens_at,
        head.closes_at,
        repr(head.calling_limits),
        zip_place.zones,
        zip_place.state,
        head.state,
        bool(head.do_not_call),
        bool(head.deceased),
        head.consent_to_call,
        tuple(
            (*where_of_number(p.number), p.best_time, bool(p.wrong_number), bool(p.do_not_call))
            for p in phones
        ),
    )


# Patients as `read_undialed` gives them: each with its phones.
Undialed = list[tuple[Head, list[PhoneRow]]]


class Judge:
    """The calling rules' verdict for undialed patients, worked out once per shape (`_shape`)."""

    def __init__(self, settings: QueueSettings, now: datetime) -> None:
        self.settings, self.now = settings, now
        self._verdicts: dict[tuple[Any, ...], datetime | None] = {}

    def until(self, head: Any, phones: Sequence[Any]) -> datetime | None:
        """When the admission of this patient (patient_id and PATIENT_COLUMNS) ends, or None
        when the patient is not callable now."""
        shape = _shape(head, phones)
        try:
            return self._verdicts[shape]
        except KeyError:
            pass
        limits = limits_of(head, self.settings)
        verdict = (
            None
            if isinstance(limits, Exception)
            else evaluate(undialed_facts(head, phones), limits, self.now, pharmacy=hours_of(head))
        )
        until = self._verdicts[shape] = verdict.open_until if verdict and verdict.callable else None
        return until


# A made-up patient (a ZIP and a 555 number, no one's data) judged once per process in the
# background, so that the tables the first judgement loads are in memory before any claim needs them.
_SAMPLE_HEAD: Final = Head(
    patient_id=0,
    zip_code="10001",
    state="NY",
    do_not_call=False,
    deceased=False,
    consent_to_call=True,
    code="WARM",
    timezone="America/New_York",
    opens_at=time(8),
    closes_at=time(20),
    calling_limits=None,
)
_SAMPLE_PHONES: Final = (
    PhoneRow(
        patient_id=0, number="+12125550100", best_time=None, wrong_number=False, do_not_call=False
    ),
)
_warm_lock = threading.Lock()
_warmed: threading.Event | None = None
_log = logging.getLogger(__name__)


def warm_compliance_tables() -> threading.Event:
    """Load, once per process and on a thread of its own, what the first judgement of a patient
    loads — the ZIP and phone-prefix tables (queues.compliance.zones), phonenumbers' metadata, the
    limits: 40-130 ms that the first full claim of a console (or the first claim during a build)
    paid before. A Claimer starts it when it is made; the Event is set once it is done (or
    failed: a failure is logged by its type only, and the first claim then loads them as before)."""
    global _warmed
    with _warm_lock:
        if _warmed is None:
            _warmed = threading.Event()
            threading.Thread(
                target=_warm, args=(_warmed,), name="compliance-tables", daemon=True
            ).start()
        return _warmed


def _warm(done: threading.Event) -> None:
    try:
        Judge(QueueSettings(), utcnow()).until(_SAMPLE_HEAD, _SAMPLE_PHONES)
    except Exception as error:  # never fatal: the first claim loads them instead
        _log.warning("loading the calling rules' tables ahead failed: %s", type(error).__name__)
    finally:
        done.set()


def _phones_of(conn: Any, query: Any, params: dict[str, Any]) -> dict[int, list[Any]]:
    """patient -> phones, of _PHONES_OF (an id range) or _PHONES_IN (ids)."""
    phones: dict[int, list[Any]] = defaultdict(list)
    # .all(): one fetch of the whole run; iterating a result fetches row by row (1 s per 200,000).
    make = PhoneRow._make
    for row in conn.execute(query, params).all():
        phone = make(row)
        phones[phone.patient_id].append(phone)
    return phones


_UNDIALED = (
    select(_patients.c.id.label("patient_id"), *PATIENT_COLUMNS)
    .select_from(_patients.join(_pharmacies, _pharmacies.c.id == _patients.c.pharmacy_id))
    .where(~_dialed_since(bindparam("since", type_=_UTC), _patients.c.id))
    .order_by(_patients.c.id)
)
_UNDIALED_OF = _UNDIALED.where(_patients.c.id.between(bindparam("first"), bindparam("last")))
_UNDIALED_IN = _UNDIALED.where(_patients.c.id.in_(bindparam("ids", expanding=True)))


def read_undialed(conn: Any, patient_ids: Sequence[int], now: datetime) -> Undialed:
    """What the calling rules read of these patients (patient_id and PATIENT_COLUMNS, with their
    phones), for those not dialed in the lookback: a build judges from it (`Judge.until`) the
    admission each new queue entry is written with, which spares writing every new entry twice.

    A change another session commits between this read and the build's commit cannot clear such
    an admission (the triggers do not see an entry not yet committed), as it could not when
    admit_entries admitted new entries in the build's transaction: the dial-time check, run in
    full before every call, stands between such a change and a call."""
    since = as_utc(now) - DIAL_LOOKBACK
    out: Undialed = []
    for run in _id_runs(sorted(set(patient_ids))):
        members = set(run)
        if run[-1] - run[0] < 2 * len(run):  # most of the range: read it whole
            phones = _phones_of(conn, _PHONES_OF, {"first": run[0], "last": run[-1]})
            heads = _heads(
                conn.execute(_UNDIALED_OF, {"first": run[0], "last": run[-1], "since": since}).all()
            )
        else:  # a few ids scattered over it (a rebuild's patients new to the queue): by id
            phones = _phones_of(conn, _PHONES_IN, {"ids": run})
            heads = _heads(conn.execute(_UNDIALED_IN, {"ids": run, "since": since}).all())
        for head in heads:
            if head.patient_id in members:
                out.append((head, phones.get(head.patient_id, [])))
    return out


def _id_runs(ids: list[int]) -> Iterator[list[int]]:
    """Sorted ids in runs of at most CHUNK ids, spanning at most 2 * CHUNK: each read by its id
    range when the ids fill half of it or more, else by its ids."""
    run: list[int] = []
    for pid in ids:
        if run and (len(run) == CHUNK or pid - run[0] >= 2 * CHUNK):
            yield run
            run = []
        run.append(pid)
    if run:
        yield run


def admit_entries(
    session: Session,
    now: datetime,
    settings: QueueSettings | None = None,
    *,
    pharmacy_ids: Sequence[int] | None = None,
    scoped: bool = False,
) -> int:
    """Run the claim-time check now for every queued patient without a live admission and store
    it on those found callable; returns how many were admitted. Runs in the caller's transaction.
    With `scoped`, only the patients in build_scope (a scoped build's)."""
    admitted = judge_waiting(session, now, settings, pharmacy_ids=pharmacy_ids, scoped=scoped)
    store_admissions(session, admitted, now, settings)
    return sum(len(ids) for ids in admitted.values())


def judge_waiting(
    session: Session,
    now: datetime,
    settings: QueueSettings | None = None,
    *,
    pharmacy_ids: Sequence[int] | None = None,
    scoped: bool = False,
) -> dict[datetime, list[int]]:
    """admit_entries' reads and verdicts, writing nothing: admitted until -> patients. A full
    build (queues.building.stepwise) reads them outside SQLite's write lock and stores them in
    short steps; the store's guards (still unclaimed, still undialed) hold for what changed in
    between, and the dial-time check stands between any other change and a call."""
    settings = settings or QueueSettings()
    key = admission_key(settings)
    now = as_utc(now)
    conn = session.connection()
    query = _waiting_query(key, pharmacy_ids, scoped)
    judge = Judge(settings, now)
    admitted: dict[datetime, list[int]] = defaultdict(list)
    after = 0
    while True:
        heads = _heads(
            conn.execute(query, {"now": now, "since": now - DIAL_LOOKBACK, "after": after}).all()
        )
        if not heads:
            break
        after = heads[-1].patient_id
        if after - heads[0].patient_id < 2 * len(heads):  # most of the range: read it whole
            phones = _phones_of(conn, _PHONES_OF, {"first": heads[0].patient_id, "last": after})
        else:  # a few patients spread over many (a re-import's scoped build): by their ids
            ids = [head.patient_id for head in heads]
            phones = _phones_of(conn, _PHONES_IN, {"ids": ids})
        for head in heads:
            until = judge.until(head, phones.get(head.patient_id, ()))
            if until is not None:
                admitted[until].append(head.patient_id)
        if len(heads) < CHUNK:
            break
    return admitted


# The first reads of judge_in_claim_order are small, so the head's verdicts are stored a fraction of
# a second after a build starts; each read after is twice the last, up to CLAIM_ORDER_CHUNK.
CLAIM_ORDER_FIRST: Final = 500
CLAIM_ORDER_CHUNK: Final = 8_000


def judge_in_claim_order(
    sessions: sessionmaker[Session],
    now: datetime,
    settings: QueueSettings | None = None,
    *,
    first: int | None = None,
    largest: int | None = None,
) -> Iterator[list[tuple[int, datetime]]]:
    """judge_waiting's verdicts for the whole queue, head of the queue first: the waiting
    entries in the order claims take them, `first` at first, then twice as many each read up
    to `largest` (CLAIM_ORDER_FIRST and CLAIM_ORDER_CHUNK unless told); yields each read's
    callable patients as (patient_id, admitted until), in that order. Each read is a short read of its own (a keyset on (sort_key, patient_id)), none held
    open while the caller stores what the last one found, so a build can store the head's
    admissions while the tail is still to be read. An entry whose sort key a writer moves
    between two reads may be judged twice or not at all: a later pass (judge_waiting) or the
    claim's full check covers it."""
    settings = settings or QueueSettings()
    key = admission_key(settings)
    now = as_utc(now)
    judge = Judge(settings, now)
    params: dict[str, Any] = {"now": now, "since": now - DIAL_LOOKBACK}
    size, largest = first or CLAIM_ORDER_FIRST, largest or CLAIM_ORDER_CHUNK
    query = _claim_order_query(key, after=False)
    following = _claim_order_query(key, after=True)
    while True:
        with reading(sessions) as session:
            conn = session.connection()
            heads = conn.execute(query, {**params, "n": size}).all()
            if not heads:
                return
            ids = [head.patient_id for head in heads]
            phones = _phones_of(conn, _PHONES_IN, {"ids": ids})
        found = [
            (head.patient_id, until)
            for head in heads
            if (until := judge.until(head, phones.get(head.patient_id, ()))) is not None
        ]
        if found:
            yield found
        if len(heads) < size:
            return
        params["after_key"], params["after"] = heads[-1].sort_key, heads[-1].patient_id
        query, size = following, min(largest, size * 2)


def store_admissions(
    session: Session,
    admitted: dict[datetime, list[int]],
    now: datetime,
    settings: QueueSettings | None = None,
) -> None:
    """Store judge_waiting's verdicts, in the caller's transaction."""
    key, now, conn = admission_key(settings or QueueSettings()), as_utc(now), session.connection()
    for until, ids in admitted.items():
        for i in range(0, len(ids), WRITE_CHUNK):
            _store(conn, ids[i : i + WRITE_CHUNK], until, key, now)


_STORE_SQLITE = (
    "UPDATE queue_entries SET admitted_at = ?, admitted_until = ?, admitted_key = ? "
    "WHERE patient_id = ? AND claimed_at IS NULL AND NOT EXISTS (SELECT 1 FROM attempts "
    "WHERE attempts.patient_id = queue_entries.patient_id AND attempts.started_at > ?)"
)


def _store(
    conn: Any,
    ids: list[int],
    until: datetime,
    key: str,
    now: datetime,
    *,
    skip_locked: bool = False,
) -> None:
    # Still claimable and still undialed at write time: an attempt saved while this ran (its
    # trigger cleared the admission) must not be covered by a verdict that did not see it.
    # PostgreSQL takes the ids as one array; SQLite one row per execution through the driver
    # (in-process and cheap, where binding 100,000 times through SQLAlchemy was not).
    since = now - DIAL_LOOKBACK
    if conn.dialect.name != "postgresql":
        values, since_text = (sqlite_text(now), sqlite_text(until), key), sqlite_text(since)
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(_STORE_SQLITE, [(*values, pid, since_text) for pid in ids])
        finally:
            cursor.close()
        return
    which = _qe.c.patient_id == any_(bindparam("ids", type_=ARRAY(Integer)))
    if skip_locked:  # a row a claim is taking now is the claim's: no wait for it
        which = _qe.c.patient_id.in_(
            select(_qe.c.patient_id)
            .where(which, _qe.c.claimed_at.is_(None))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    conn.execute(
        update(_qe)
        .where(
            and_(
                which,
                _qe.c.claimed_at.is_(None),
                ~_dialed_since(bindparam("since", type_=_UTC)),
            )
        )
        .values(
            admitted_at=bindparam("now", type_=_UTC),
            admitted_until=bindparam("until", type_=_UTC),
            admitted_key=key,
        ),
        {"now": now, "until": until, "since": since, "ids": ids},
    )


def admitted_count(session: Session, now: datetime, settings: QueueSettings) -> int:
    """How many open entries hold a live admission under these settings now."""
    return int(
        session.scalar(
            select(func.count()).where(
                _qe.c.status == "open",
                _qe.c.admitted_at <= bindparam("now", type_=_UTC),
                _qe.c.admitted_until > bindparam("now", type_=_UTC),
                _qe.c.admitted_key == admission_key(settings),
            ),
            {"now": as_utc(now)},
        )
        or 0
    )
