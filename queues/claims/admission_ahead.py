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
    reads twice as many the next time, up to AHEAD_MOST; else AHEAD_FIRST again."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # Asked for and not started: the newest ask per database (its sessionmaker).
        self._asked: dict[
            int, tuple[sessionmaker[Session], datetime, QueueSettings, list[int]]
        ] = {}
        self._running: int | None = None  # the database of the run under way
        self._stopping: int | None = None  # that run's Claimer is closing: end it
        self._thread: threading.Thread | None = None
        self.size = AHEAD_FIRST
        self.runs = 0
        self.admitted = 0

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
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="admission-ahead", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is asked for or running (tests): True when so, False when
        `timeout` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._asked and self._running is None, timeout)

    def forget(self, sessions: sessionmaker[Session], timeout: float) -> bool:
        """A Claimer on this database is closing: drop its ask not yet started, end a run under
        way between two of its write transactions, and wait at most `timeout` seconds for that
        (a write waiting out another writer's lock can take busy_timeout): True when nothing of
        it runs any more. Quitting the console does not wait on the queue's next heads."""
        key = id(sessions)
        with self._cond:
            self._asked.pop(key, None)
            if self._running == key:
                self._stopping = key
            return self._cond.wait_for(lambda: self._running != key, timeout)

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._asked))
                key = next(iter(self._asked))
                sessions, now, settings, pharmacy_ids = self._asked.pop(key)
                self._running, self._stopping = key, None
            try:
                self._run(sessions, now, settings, pharmacy_ids, partial(self._stops, key))
            finally:
                with self._cond:
                    self._running = self._stopping = None
                    self._cond.notify_all()

    def _stops(self, key: int) -> bool:
        return self._stopping == key

    def _run(
        self,
        sessions: sessionmaker[Session],
        now: datetime,
        settings: QueueSettings,
        pharmacy_ids: Sequence[int],
        stop: Callable[[], bool],
    ) -> None:
        try:
            size = self.size
            waiting, admitted = admit_ahead(sessions, now, settings, pharmacy_ids, size, stop)
            self.size = min(AHEAD_MOST, size * 2) if 2 * waiting >= size else AHEAD_FIRST
            self.runs += 1
            self.admitted += admitted
        except (OutreachError, SQLAlchemyError) as error:  # the database could not answer
            _log.warning("admission ahead of the claims failed: %s", type(error).__name__)
        except Exception as error:  # a bug: where it happened, for the log; the claims stand
            _log.error(
                "admission ahead of the claims failed: %s at %s",
                type(error).__name__,
                _where(error),
            )


def _where(error: BaseException) -> str:
    """file:line of the innermost frame, never the exception's message (it may hold values)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"


# One for the process: every Claimer in it shares it (a console has one; a benchmark several).
ADMIT_AHEAD: Final = AdmitAhead()
