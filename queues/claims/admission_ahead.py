"""Admission ahead of the claims: a claim that had to run the full check judges the heads after it.

A claim is one statement when its head holds a live admission (queues.claims.admission); otherwise
it runs the full check (queues.claims.claiming.claim_next). On a new day every admission has run
out until a build stores them again, and a build's process takes seconds to start, so each claim
meanwhile finds its head as stale as the last one's and runs the full check. Instead, the claim
that found a stale head has the next heads of its pharmacies judged too, after its own commit and
in transactions of their own, as a build would (`Judge`: undialed patients only; the store's
guards), so the claims after it are the one statement again. That work (11-59 ms for 128-1,024
heads) runs on a thread of the process, not the claimer's: the agent's claim returns once its own
commit is done.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Final

from sqlalchemy import Integer, bindparam, literal_column, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from queues.claims.admission import (
    _PHONES_IN,
    _UTC,
    DIAL_LOOKBACK,
    Judge,
    _patients,
    _pharmacies,
    _phones_of,
    _qe,
    _store,
    _waiting_where,
    admission_key,
)
from queues.claims.claiming import wake_due
from queues.compliance.patient import PATIENT_COLUMNS
from queues.errors import OutreachError
from queues.settings import QueueSettings
from queues.store.db import reading, transaction
from queues.timeutil import as_utc

AHEAD_FIRST: Final = 128
AHEAD_MOST: Final = 1_024
AHEAD_WRITE: Final = 256  # rows per write transaction (on SQLite each holds the write lock)
_log = logging.getLogger(__name__)


def _ahead_query(key: str, postgres: bool) -> Any:
    """Of the first `n` claimable entries of these pharmacies, in the order claims take them (the
    claim's own head query, queues.claims.claiming._head, without its lock), those waiting for an
    admission (`_waiting_where`): a read of at most `n` entries of ix_queue_entries_claimable,
    however much of the queue is admitted already."""
    now = bindparam("now", type_=_UTC)
    available = _qe.c.available_at
    heads = (
        select(_qe.c.patient_id)
        .where(
            _qe.c.status == literal_column("'open'"),
            _qe.c.claimed_at.is_(None),
            _qe.c.blocked_reason.is_(None),
            # As in the claim's head query: a unary + keeps SQLite walking the claimable index
            # in order rather than ranging over ix_queue_entries_waiting and sorting.
            (available if postgres else literal_column("+queue_entries.available_at", _UTC)) <= now,
            _qe.c.pharmacy_id.in_(bindparam("ids", expanding=True)),
        )
        .order_by(_qe.c.sort_key, _qe.c.patient_id)
        .limit(bindparam("n", type_=Integer))
        .subquery("ahead")
    )
    joined = (
        heads.join(_qe, _qe.c.patient_id == heads.c.patient_id)
        .join(_patients, _patients.c.id == _qe.c.patient_id)
        .join(_pharmacies, _pharmacies.c.id == _patients.c.pharmacy_id)
    )
    return (
        select(_qe.c.patient_id, *PATIENT_COLUMNS).select_from(joined).where(*_waiting_where(key))
    )


def admit_ahead(
    sessions: sessionmaker[Session],
    now: datetime,
    settings: QueueSettings,
    pharmacy_ids: Sequence[int],
    n: int,
    stop: Callable[[], bool] = lambda: False,
) -> tuple[int, int]:
    """Judge those of the first `n` claimable entries of these pharmacies (claim order) that have
    no live admission, as a build does, and store the verdicts of those found callable, at most
    AHEAD_WRITE rows a transaction; returns (waiting, admitted). On PostgreSQL a row a claim is
    taking meanwhile is skipped, not waited for; the guards (still unclaimed, still undialed) hold
    for whatever changed since the read, and the dial-time check runs in full before every call.
    `stop()` true ends it between two write transactions (its Claimer is closing): what is stored
    stands, the rest is judged again by the next claim or build."""
    key, now = admission_key(settings), as_utc(now)
    bind = sessions.kw.get("bind")
    postgres = bind is not None and bind.dialect.name == "postgresql"
    with reading(sessions) as session:
        conn = session.connection()
        heads = conn.execute(
            _ahead_query(key, postgres),
            {"now": now, "since": now - DIAL_LOOKBACK, "ids": list(pharmacy_ids), "n": n},
        ).all()
        if not heads:
            return 0, 0
        phones = _phones_of(conn, _PHONES_IN, {"ids": [h.patient_id for h in heads]})
    judge = Judge(settings, now)
    by_until: dict[datetime, list[int]] = defaultdict(list)
    for head in heads:
        until = judge.until(head, phones.get(head.patient_id, ()))
        if until is not None:
            by_until[until].append(head.patient_id)
    admitted = 0
    for until, ids in by_until.items():
        for i in range(0, len(ids), AHEAD_WRITE):
            if stop():
                return len(heads), admitted
            admitted += len(ids[i : i + AHEAD_WRITE])
            with transaction(sessions) as session:
                chunk = ids[i : i + AHEAD_WRITE]
                _store(session.connection(), chunk, until, key, now, skip_locked=True)
    return len(heads), admitted


class AdmitAhead:
    """When to admit ahead and how far, for the claimers of one process, on a thread of its own:
    a full claim asks for it and returns (`after_full_claim`), the heads are judged meanwhile, one
    run at a time, and no claim ever waits for it. When the heads it read were mostly waiting, it
    reads twice as many the next time, up to AHEAD_MOST; else AHEAD_FIRST again.

    The same thread wakes a backlog of due rows (`wake_backlog`: a claim's wake step found a whole
    batch due), before any admission asked: while one row is due, no claim can be the one
    statement, and the rows it puts back are mostly heads whose admission has run out (yesterday's
    leases), so the admission after it goes on until it has read past as many heads as it woke."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # Asked for and not started: the newest ask per database (its sessionmaker).
        self._asked: dict[
            int, tuple[sessionmaker[Session], datetime, QueueSettings, list[int]]
        ] = {}
        # Backlogs to wake, per database: the latest clock asked (each run wakes all due by it).
        self._wake: dict[int, tuple[sessionmaker[Session], datetime]] = {}
        self._woken_since: dict[int, int] = {}  # rows woken since the last admission ahead
        self._running: int | None = None  # the database of the run under way
        self._waking: datetime | None = None  # that run wakes the rows due by this clock
        self._stopping: int | None = None  # that run's Claimer is closing: end it
        self._thread: threading.Thread | None = None
        self.size = AHEAD_FIRST
        self.runs = 0
        self.admitted = 0
        self.wake_runs = 0
        self.woken = 0

    def after_full_claim(
        self,
        sessions: sessionmaker[Session],
        now: datetime,
        settings: QueueSettings,
        pharmacy_ids: Sequence[int],
    ) -> None:
        """Ask for the heads after a full claim to be admitted, and return at once: they are
        judged on this process's admission-ahead thread, after the claim's commit (for next_in
        the caller's: it asks from its after_commit hook). Asked again before that run starts,
        the newest ask stands (its clock and pharmacies); asked while a run is under way, it runs
        again after it. Any failure is logged (its type only: no values) and ends that run, never
        reaching a claimer; the claims meanwhile run the full check, as they would have."""
        if not pharmacy_ids:
            return
        with self._cond:
            self._asked[id(sessions)] = (sessions, now, settings, list(pharmacy_ids))
            self._start()

    def wake_backlog(self, sessions: sessionmaker[Session], now: datetime) -> None:
        """Ask for every row due by `now` to be put back (claiming.wake_due), and return at once:
        a claim's wake step just put back a whole batch, so more may be due. Asked from inside
        the claim, before its commit: on PostgreSQL the rows the claim woke are locked and
        skipped; on SQLite the first chunk waits for the claim's commit, on this thread."""
        key = id(sessions)
        with self._cond:
            if self._running == key and self._waking is not None and self._waking >= now:
                return  # the run under way wakes every row due by then (the claim's own: by it)
            asked = self._wake.get(key)
            if asked is None or asked[1] < now:
                self._wake[key] = (sessions, now)
            self._start()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._serve, name="admission-ahead", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    def _idle(self) -> bool:
        return not self._asked and not self._wake and self._running is None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is asked for or running (tests): True when so, False when
        `timeout` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(self._idle, timeout)

    def forget(self, sessions: sessionmaker[Session], timeout: float) -> bool:
        """A Claimer on this database is closing: drop its ask not yet started, end a run under
        way between two of its write transactions, and wait at most `timeout` seconds for that
        (a write waiting out another writer's lock can take busy_timeout): True when nothing of
        it runs any more. Quitting the console does not wait on the queue's next heads."""
        key = id(sessions)
        with self._cond:
            self._asked.pop(key, None)
            self._wake.pop(key, None)
            self._woken_since.pop(key, None)
            if self._running == key:
                self._stopping = key
            return self._cond.wait_for(lambda: self._running != key, timeout)

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._wake or self._asked))
                if self._wake:  # first: no claim is the one statement while a row is due
                    key = next(iter(self._wake))
                    sessions, now = self._wake.pop(key)
                    run = partial(self._run_wake, key, sessions, now)
                    self._waking = now
                else:
                    key = next(iter(self._asked))
                    sessions, now, settings, pharmacy_ids = self._asked.pop(key)
                    run = partial(self._run, key, sessions, now, settings, pharmacy_ids)
                self._running, self._stopping = key, None
            try:
                run(partial(self._stops, key))
            finally:
                with self._cond:
                    self._running = self._stopping = self._waking = None
                    self._cond.notify_all()

    def _stops(self, key: int) -> bool:
        return self._stopping == key

    def _run(
        self,
        key: int,
        sessions: sessionmaker[Session],
        now: datetime,
        settings: QueueSettings,
        pharmacy_ids: Sequence[int],
        stop: Callable[[], bool],
    ) -> None:
        # Rows a wake just put back are mostly heads as stale as the one the claim found: the
        # run goes on, twice as far each time, until it has read past them (or AHEAD_MOST), the
        # first read small so that the claims are the one statement again soonest.
        with self._cond:
            woken = self._woken_since.pop(key, 0)
        try:
            size = AHEAD_FIRST if woken else self.size
            while True:
                waiting, admitted = admit_ahead(sessions, now, settings, pharmacy_ids, size, stop)
                grow = 2 * waiting >= size
                self.size = min(AHEAD_MOST, size * 2) if grow else AHEAD_FIRST
                self.runs += 1
                self.admitted += admitted
                if not grow or size >= min(woken, AHEAD_MOST) or stop():
                    break
                size = self.size
        except Exception as error:
            _failed("admission ahead of the claims", error)

    def _run_wake(
        self, key: int, sessions: sessionmaker[Session], now: datetime, stop: Callable[[], bool]
    ) -> None:
        try:
            woken = wake_due(sessions, now, stop)
            self.wake_runs += 1
            self.woken += woken
            with self._cond:
                if self._stopping != key:  # its Claimer closed meanwhile: nothing to admit for
                    self._woken_since[key] = self._woken_since.get(key, 0) + woken
        except Exception as error:
            _failed("waking the rows due", error)


def _failed(what: str, error: Exception) -> None:
    """A failure on the thread: logged by its type only (no values), never reaching a claimer;
    the claims meanwhile run the full check, as they would have."""
    if isinstance(error, OutreachError | SQLAlchemyError):  # the database could not answer
        _log.warning("%s failed: %s", what, type(error).__name__)
    else:  # a bug: where it happened, for the log; the claims stand
        _log.error("%s failed: %s at %s", what, type(error).__name__, _where(error))


def _where(error: BaseException) -> str:
    """file:line of the innermost frame, never the exception's message (it may hold values)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"


# One for the process: every Claimer in it shares it (a console has one; a benchmark several).
ADMIT_AHEAD: Final = AdmitAhead()
