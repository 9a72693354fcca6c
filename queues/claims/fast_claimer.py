"""A console's claims: one statement on the driver's connection when it can, claim_next otherwise.

Most claims are the plain case: the agent holds nobody, no held or passed-over row is due back, and
the head of the queue was admitted by the calling rules a moment ago (queues.claims.admission). Then the
claim is one statement that checks exactly those three things and takes the head row — with
`FOR UPDATE SKIP LOCKED` and its audit row in a CTE on PostgreSQL, as an `UPDATE … RETURNING`
whose audit row a trigger writes on SQLite — in autocommit, so a claim is one round trip and no
session. When any of the three does not hold, the statement takes nothing and the claim runs
queues.claims.claiming.claim_next in a transaction: the held patient comes back, due rows are woken, the
head gets the full compliance check. Both paths make the same decision; only the cost differs.
A full claim whose wake step put back a whole batch has the rest of the rows due woken at once, on
the process's admission-ahead thread (its first chunk beside the claim): while any row is due no
claim can be the one statement, and a backlog of thousands (a day's expired leases, a time zone's
passed-over rows at its opening) would otherwise cost a full claim per batch.
A full claim that took a new patient then has the heads after it admitted (queues.claims.admission_ahead),
after its commit and on the process's admission-ahead thread, so the claims after it are the one
statement again and the claim itself returns as soon as its own commit is done.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from queues.claims.admission import admission_key, warm_compliance_tables
from queues.claims.admission_ahead import ADMIT_AHEAD
from queues.claims.claiming import Claim, claim_next, new_lease_token, warm_claim_statements
from queues.errors import DatabaseBusy
from queues.settings import QueueSettings
from queues.store.db import safe_url, sqlite_busy, transaction
from queues.store.models import CLAIMABLE, WAITING_TO_WAKE
from queues.timeutil import as_utc, sqlite_text, utcnow

_log = logging.getLogger(__name__)

# The predicates are the claimable and wake indexes' own (queues.store.models), so both planners use them.
_SQLITE = """
UPDATE queue_entries SET holder_id = ?1, lease_token = ?2, claimed_at = ?3,
    lease_expires_at = ?4, available_at = ?4
WHERE patient_id = (
        SELECT patient_id FROM queue_entries
        WHERE {claimable} AND +available_at <= ?3 AND pharmacy_id IN ({ids})
          AND (reserved_for_id IS NULL OR reserved_for_id = ?1 OR reserved_until <= ?3)
        ORDER BY sort_key, patient_id LIMIT 1)
  AND admitted_at <= ?3 AND admitted_until > ?3 AND admitted_key = ?5
  AND NOT EXISTS (SELECT 1 FROM queue_entries INDEXED BY ix_queue_entries_holder
                  WHERE holder_id = ?1 AND status = 'open' AND lease_expires_at > ?3)
  AND NOT EXISTS (SELECT 1 FROM queue_entries INDEXED BY ix_queue_entries_wake
                  WHERE {waiting} AND available_at <= ?3)
RETURNING patient_id
"""

# "Anyone due to wake?" asks the wake index for its earliest row (min() is always that index's
# first entry): as NOT EXISTS, the planner took held rows, leases running, for due ones once
# statistics showed many of them, and read the whole queue in every claim (tests/queues/test_claimer).
_POSTGRES = f"""
WITH head AS (
    SELECT patient_id, admitted_at, admitted_until, admitted_key FROM queue_entries
    WHERE {CLAIMABLE} AND available_at <= %(now)s AND pharmacy_id = ANY(%(ids)s)
      AND (reserved_for_id IS NULL OR reserved_for_id = %(user)s OR reserved_until <= %(now)s)
    ORDER BY sort_key, patient_id LIMIT 1 FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE queue_entries AS q SET holder_id = %(user)s, lease_token = %(token)s,
        claimed_at = %(now)s, lease_expires_at = %(expires)s, available_at = %(expires)s
    FROM head
    WHERE q.patient_id = head.patient_id
      AND head.admitted_at <= %(now)s AND head.admitted_until > %(now)s
      AND head.admitted_key = %(key)s
      AND NOT EXISTS (SELECT 1 FROM queue_entries h WHERE h.holder_id = %(user)s
                      AND h.status = 'open' AND h.lease_expires_at > %(now)s)
      AND NOT coalesce((SELECT min(w.available_at) FROM queue_entries w WHERE {WAITING_TO_WAKE})
                       <= %(now)s, false)
    RETURNING q.patient_id
)
INSERT INTO audit_events (at, user_id, action, patient_id, detail)
SELECT %(at)s, %(user)s, 'claim', patient_id, '{{}}' FROM taken
RETURNING patient_id
"""


# How long closing a Claimer waits for its admission ahead to stop between two writes: a write
# waiting out another writer's lock can take busy_timeout (10 s); quitting must not.
CLOSE_WAIT_S = 1.0


def _naive_utc(value: datetime) -> datetime:
    return as_utc(value).replace(tzinfo=None)


_warmed: weakref.WeakKeyDictionary[Engine, threading.Event] = weakref.WeakKeyDictionary()
_warm_lock = threading.Lock()


def statements_warmed(engine: Engine) -> threading.Event:
    """warm_claim_statements on a thread of its own, once per engine; the Event is set once it
    is done. A failure (a database not there yet, a lock held all busy_timeout) is logged by its
    type only: the first full claim then compiles them, as before."""
    with _warm_lock:
        done = _warmed.get(engine)
        if done is not None:
            return done
        done = _warmed[engine] = threading.Event()

    def warm() -> None:
        try:
            warm_claim_statements(engine)
        except Exception as error:  # never fatal
            _log.warning("compiling the claim's statements ahead failed: %s", type(error).__name__)
        finally:
            done.set()

    threading.Thread(target=warm, name="claim-statements", daemon=True).start()
    return done


class Claimer:
    """Claims for one console (or one benchmark thread); safe to share between threads."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        settings: QueueSettings | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.settings = settings or QueueSettings()
        self.key = admission_key(self.settings)
        self.postgres = engine.dialect.name == "postgresql"
        self._raw: Any = None
        self._lock = threading.Lock()
        self._sqlite_sql: dict[int, str] = {}
        self._dbapi_error: type[Exception] = engine.dialect.dbapi.Error  # type: ignore[union-attr]
        # How the claims went (the benchmark reports it): one statement, or the full claim.
        self.fast = 0
        self.full = 0
        # The calling rules' tables load in the background now, not in the first full claim;
        # so are the full claim's statements compiled, once per engine.
        warm_compliance_tables()
        statements_warmed(engine)

    def next(
        self,
        *,
        user_id: int,
        pharmacy_ids: Sequence[int],
        now: datetime,
        lease_seconds: int,
    ) -> Claim | None:
        """The best next patient for the user, claimed (as claim_next), or None."""
        if pharmacy_ids:
            token = new_lease_token()
            expires = now + timedelta(seconds=lease_seconds)
            with self._lock:
                taken = self._one_statement(user_id, list(pharmacy_ids), now, expires, token)
            if taken is not None:
                self.fast += 1
                return Claim(taken, token, as_utc(now), as_utc(expires))
        self.full += 1
        with transaction(self.sessions) as session:
            claim = claim_next(
                session,
                user_id=user_id,
                pharmacy_ids=pharmacy_ids,
                now=now,
                lease_seconds=lease_seconds,
                settings=self.settings,
                backlog=partial(ADMIT_AHEAD.wake_backlog, self.sessions, now),
            )
        if claim is not None and not claim.resumed:  # the heads after it may be as stale
            ADMIT_AHEAD.after_full_claim(self.sessions, now, self.settings, pharmacy_ids)
        return claim

    def next_in(
        self,
        session: Session,
        *,
        user_id: int,
        pharmacy_ids: Sequence[int],
        now: datetime,
        lease_seconds: int,
    ) -> Claim | None:
        """As `next`, in the caller's transaction: the console claims and reads the patient's
        context in one transaction (one commit), and a one statement that takes nothing falls
        through to claim_next in that same transaction (on PostgreSQL the head it locked with
        SKIP LOCKED stays its own). The claim is undone if the transaction rolls back."""
        if pharmacy_ids:
            token = new_lease_token()
            expires = now + timedelta(seconds=lease_seconds)
            ids = list(pharmacy_ids)
            sql, params = self._statement(user_id, ids, now, expires, token)
            row = session.connection().exec_driver_sql(sql, params).first()
            if row is not None:
                self.fast += 1
                return Claim(int(row[0]), token, as_utc(now), as_utc(expires))
        self.full += 1
        claim = claim_next(
            session,
            user_id=user_id,
            pharmacy_ids=pharmacy_ids,
            now=now,
            lease_seconds=lease_seconds,
            settings=self.settings,
            backlog=partial(ADMIT_AHEAD.wake_backlog, self.sessions, now),
        )
        if claim is not None and not claim.resumed:  # asked after the caller's commit
            ids = list(pharmacy_ids)

            def ahead(_session: Session) -> None:
                ADMIT_AHEAD.after_full_claim(self.sessions, now, self.settings, ids)

            event.listen(session, "after_commit", ahead, once=True)
        return claim

    def open(self) -> None:
        """Connect now rather than at the first claim (the benchmark's claimers do, so that no
        timed claim pays for a connect)."""
        with self._lock:
            self._connection()

    def _connection(self) -> Any:
        if self._raw is None:
            raw = self.engine.raw_connection()
            if self.postgres:
                raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            self._raw = raw
        return self._raw.driver_connection

    def _one_statement(
        self, user: int, ids: list[int], now: datetime, expires: datetime, token: str
    ) -> int | None:
        try:
            conn = self._connection()
            sql, params = self._statement(user, ids, now, expires, token)
            row = conn.execute(sql, params).fetchone()
        except self._dbapi_error as exc:
            if sqlite_busy(exc):
                # Another writer held the file for all of busy_timeout: the full claim would wait
                # as long again for the same lock. Say so now.
                raise DatabaseBusy(safe_url(str(self.engine.url)), str(exc)) from exc
            # A dropped server connection: forget this connection; the full claim below runs
            # through the pool, which reconnects or reports the error plainly.
            self._discard()
            return None
        return None if row is None else int(row[0])

    def _statement(
        self, user: int, ids: list[int], now: datetime, expires: datetime, token: str
    ) -> tuple[str, dict[str, Any] | tuple[Any, ...]]:
        """The one statement and its parameters, in the driver's own style (SQLite: numbered,
        bound by position — the driver looks no name up)."""
        if self.postgres:
            return _POSTGRES, {
                "user": user,
                "token": token,
                "now": _naive_utc(now),
                "expires": _naive_utc(expires),
                "ids": ids,
                "key": self.key,
                "at": _naive_utc(utcnow()),
            }
        params = (user, token, sqlite_text(now), sqlite_text(expires), self.key, *ids)
        return self._sqlite(len(ids)), params

    def _sqlite(self, n: int) -> str:
        sql = self._sqlite_sql.get(n)
        if sql is None:
            ids = ", ".join(f"?{i}" for i in range(6, 6 + n))
            sql = self._sqlite_sql[n] = _SQLITE.format(
                claimable=CLAIMABLE, waiting=WAITING_TO_WAKE, ids=ids
            )
        return sql

    def _discard(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to give back
                raw.invalidate()

    def close(self) -> None:
        """Give the connection back to the pool (as the pool handed it out), once the admission
        ahead on this database has stopped (its ask not started is dropped; a run under way ends
        between two writes; at most CLOSE_WAIT_S): its connections are the same engine's, which
        its owner may dispose of next — a write still waiting then ends in the log, nothing lost."""
        ADMIT_AHEAD.forget(self.sessions, CLOSE_WAIT_S)
        # The statements' warm-up holds one of the engine's connections while it runs: one it
        # still held at the owner's dispose stayed open to the end of the process (SQLite then
        # left every write of a short command, `outreach demo --seed-only`, in the -wal file).
        with _warm_lock:
            warming = _warmed.get(self.engine)
        if warming is not None:
            warming.wait(CLOSE_WAIT_S)
        with self._lock:
            raw, self._raw = self._raw, None
            if raw is None:
                return
            if self.postgres:
                raw.driver_connection.autocommit = False
            raw.close()
