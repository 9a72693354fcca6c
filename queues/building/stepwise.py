"""A full queue build that never holds agents up: it reads and works out everything in a read-only
transaction (on SQLite a WAL snapshot, no lock), then writes in short transactions of a few
thousand rows, so claims get the write lock between them (SQLite) or never wait on a build's rows
for long (PostgreSQL).

It decides what `build_queues` decides (tests/queues/test_building_equivalence.py runs both). Its
writes are guarded by what they were worked out from — a task closes only if still open, an entry
finishes only if nobody holds it — so a row a call changed since the read is left as the call left
it, for the next build. On PostgreSQL a build's new rows are written, step by step, while its rules
work out the later parts (the server's work on them runs on the other core); SQLite's steps are
sized by their time, so there they come after the rules. On PostgreSQL the build holds the
builds' advisory lock for its whole run (other builds wait, as they wait on each other); on SQLite
a scoped build (an import, a supervisor's control) may write between two steps, and the new rows a
full build writes yield to what it wrote.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, Integer, String, bindparam, column, table, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import DateTime, NullType

from queues.building.build import (
    _COLUMN_TYPES,
    _T,
    BUILD_LOCK,
    PART_PATIENTS,
    REOPENABLE,
    REOPENED,
    RESCORED,
    BuildResult,
    _bind_utc,
    _closings,
    _due_in,
    _existing_entries,
    _existing_tasks,
    _stale_rows,
    _Work,
)
from queues.building.rules import default_rules
from queues.building.rules.base import Rule
from queues.building.rules.snapshot import load_snapshot
from queues.building.settings import BuildSettings
from queues.claims.admission import (
    judge_in_claim_order,
    judge_waiting,
    read_undialed,
    store_admissions,
)
from queues.collector import collector_paused
from queues.settings import QueueSettings
from queues.store.bulk import insert_rows
from queues.store.db import reading, transaction

# Rows per write transaction. SQLite: every step holds the one write lock, so a few milliseconds
# each; PostgreSQL: a step locks only its own rows, and each commit waits for the log's flush.
# PostgreSQL, 100k patients, quiet, paced: the claims' p99 while the build wrote was 5.4-8.5 ms
# with steps of 2,000 rows (~45 ms each) against 3.6-4.4 ms with 500 (1.5-2.0x against
# 1.1-1.3x the same run's claims while the build read), for the same build time. With 200 (and the
# rescores in place, `_Steps.spread`), quiet: the claims' p99 in the build's write steps 2.17 and
# 1.56 ms against 3.79-4.06 with 500 (4.44 against 7.71 with the server busier), the build 27-29 s
# against 26.6-27.3 s (1,149 steps instead of 461).
STEP_ROWS = 500
SQLITE_STEP_ROWS = 500
POSTGRES_STEP_ROWS = 200
# While nobody works (no claim to make room for: `_Steps._agents_working`), steps this large:
# each step costs a build some milliseconds besides its rows (its session and round trips, on
# PostgreSQL the GIL the rules hold, on SQLite the commit and its checkpoint): at 100,000
# patients 2,853 steps of 200 rows on PostgreSQL, 3,873 on SQLite (bench/README.md, "Build
# queues"). An agent who signs in meets such steps for a second at most (AGENTS_RECHECK_S).
IDLE_STEP_ROWS = 5_000
# SQLite: how long a step should hold the lock. A claim that finds it taken waits in SQLite's busy
# handler, which sleeps 1, 2, 5, 10 ms… between tries: behind a 2 ms step a claim waits ~3 ms,
# behind a 10 ms one ~18 ms (1+2+5+10), which was most of the claims' tail during the writes
# (100k, load 3: 103 of 849 claims over twice the idle p99 of 4.7 ms). The rows a step writes
# follow from the last step's time.
SQLITE_STEP_SECONDS = 0.002
SQLITE_MIN_STEP_ROWS = 20
# PostgreSQL, while the write steps overlap the rules (`_Steps.overlap`): each time a step's
# thread gets the server's answer it waits for the GIL, which the rules' thread gives up only
# after Python's switch interval (5 ms by default), several times a step. 20,000 patients, loaded
# machine: 137 of 571 steps written during the rules with 5 ms, 425 with 0.5 ms.
OVERLAP_SWITCH_INTERVAL_S = 0.0005
# PostgreSQL: a pass of updates that keep a row's indexed columns (a rescore, an admission) takes
# each page's rows in this many visits (`_Steps.spread`): on a packed page the first visit's rows
# move to other pages, the other seven's stay (100k patients, a new day: 71,795 of 85,581 task
# rescores HOT, against 1,140 with each page's rows in one step).
SPREAD_WAYS = 8
_R = TypeVar("_R")

# Each phase's start and end at INFO (names and counts only: no health information), so a person
# (or bench/_build_claims.py) can line a slow claim up with what the build was doing.
_log = logging.getLogger(__name__)


class _Collector:
    """Stands in for the build's writer thread: hands each part's new rows to the write steps at
    once while they overlap the rules (PostgreSQL: `_Steps.overlapping`), else keeps them for
    the write steps after the rules. A part holds whole patients and its tasks come before its
    queue entries, so a claim never finds a new entry before its patient's new tasks."""

    def __init__(self, steps: _Steps) -> None:
        self.steps = steps
        self.rows: dict[str, list[tuple[Any, ...]]] = {"tasks": [], "queue_entries": []}

    def submit(
        self, _fn: Callable[..., object], _conn: Connection, name: str, rows: list[Any]
    ) -> None:
        if not self.steps.overlapping:
            self.rows[name].extend(rows)
            return
        self.steps.queue_new_rows(name, rows)


def build_queues_in_steps(
    sessions: sessionmaker[Session],
    now: datetime,
    settings: QueueSettings | None = None,
    rules: Iterable[Rule] | None = None,
    build: BuildSettings | None = None,
) -> BuildResult:
    """Bring every patient's tasks and queue entries in line with the rules, in short steps.

    The build reads and works out its rules on a thread of its own at a lower CPU priority
    (Linux: nice +10 for that thread alone): it is the site's background work, and on a machine
    of two cores the rules' seconds of Python otherwise take the core a console's claim needs.
    Its write steps run on the caller's thread, at the caller's priority: on SQLite a step holds
    the one write lock, and a step starved of CPU by its nice value held it while claims waited.
    After each step it pauses in proportion to the step's time (`build`, config.toml's `[build]`)."""
    done: list[BuildResult] = []
    failed: list[BaseException] = []
    writes: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()

    def on_callers_thread(write: Callable[[], None]) -> None:
        queued_on_callers_thread(write).result()

    def queued_on_callers_thread(write: Callable[[], None]) -> Future[None]:
        finished: Future[None] = Future()

        def job() -> None:
            try:
                write()
            except BaseException as error:  # raised again on the build's thread
                finished.set_exception(error)
            else:
                finished.set_result(None)

        writes.put(job)
        return finished

    def build_on_its_thread() -> None:
        _yield_cpu()
        try:
            done.append(
                _build_in_steps(
                    sessions,
                    now,
                    settings,
                    rules,
                    on_callers_thread,
                    build,
                    queued_on_callers_thread,
                )
            )
        except BaseException as error:  # raised again on the caller's thread
            failed.append(error)
        finally:
            writes.put(None)

    worker = threading.Thread(target=build_on_its_thread, name="queue-build", daemon=True)
    worker.start()
    while (job := writes.get()) is not None:
        job()
    worker.join()
    if failed:
        raise failed[0]
    return done[0]


# How much lower a full build's thread runs than the rest (nice: 0 normal, 19 lowest).
BUILD_NICENESS = 10


def _yield_cpu() -> None:
    """Lower the calling thread's CPU priority by BUILD_NICENESS, where the system allows it
    (Linux keeps a nice value per thread; elsewhere it is the whole process's, so nothing)."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    with suppress(OSError):  # not allowed here: the build runs at the caller's priority
        os.setpriority(
            os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + BUILD_NICENESS
        )


def _build_in_steps(
    sessions: sessionmaker[Session],
    now: datetime,
    settings: QueueSettings | None,
    rules: Iterable[Rule] | None,
    writer: Callable[[Callable[[], None]], None],
    build: BuildSettings | None = None,
    queued: Callable[[Callable[[], None]], Future[None]] | None = None,
) -> BuildResult:
    settings = settings or QueueSettings()
    rules = tuple(default_rules() if rules is None else rules)
    clock = time.perf_counter
    started = clock()
    _log.info("full build: started")
    with collector_paused(), _builds_wait(sessions):
        steps = _Steps(sessions, writer, build, queued)
        try:
            return _build_with(steps, sessions, now, settings, rules, started)
        finally:
            steps.stop()


def _build_with(
    steps: _Steps,
    sessions: sessionmaker[Session],
    now: datetime,
    settings: QueueSettings,
    rules: tuple[Rule, ...],
    started: float,
) -> BuildResult:
    clock = time.perf_counter
    _log.info("full build: admission first")
    # The calling rules' verdicts for the queue as it stands, stored first, the head of the
    # queue first: a build at a new day finds yesterday's admissions run out, and until a
    # patient's is stored again each claim of them is the full one (claim_next: ~5x the one
    # statement's p99), for as long as the read and the rules take (most of the build).
    admitted_first = _admit_queue_first(sessions, steps, now, settings)
    phases = {"admission first": clock() - started}
    _log.info("full build: read and rules (%d admitted first)", admitted_first)
    with reading(sessions) as session:
        conn = session.connection()
        snapshot = load_snapshot(session, now)
        existing = _existing_tasks(conn, False)
        entries = _existing_entries(conn, False)
        undialed = read_undialed(
            conn, [pid for pid in snapshot.patients if pid not in entries], now
        )
        work = _Work(conn, existing, entries, undialed, now, settings)
        collector = _Collector(steps)
        # PostgreSQL: each part's new rows are written while the rules work out the next part's
        # (the server's work on them runs on the other core), as build_queues's writer does.
        steps.overlap()
        for zone, part in snapshot.parts(PART_PATIENTS):
            work.take(_due_in(part, zone, now, settings, rules), snapshot, collector)  # type: ignore[arg-type]
        stale_ids = [v[0] for key, v in existing.open_by_key.items() if key not in work.due]
        closes = list(_closings(session, snapshot, _stale_rows(session, stale_ids), now))
    phases["read and rules"] = clock() - started - sum(phases.values())
    steps.finish_queued()
    _log.info("full build: writes")
    for name in ("tasks", "queue_entries"):
        for chunk in steps.chunks(collector.rows[name]):
            steps.run(_insert_new, name, chunk)
    stored_at = _bind_utc(now)
    # The updates in the order of the rows' keys, so a step's rows sit on neighbouring pages of
    # the table. (100k, SQLite, quiet: 837-921 steps against 879-972 before; no clear gain.)
    for chunk in steps.chunks(sorted(closes, key=_by_id)):
        steps.run(_execute, _CLOSE, [_close_params(x, stored_at) for x in chunk])
    for chunk in steps.chunks(sorted(work.reopen, key=_by_param_id)):
        steps.run(_execute, _REOPEN_GUARDED, chunk)
    # Each step's rows in id order again: a step where one pass of the spread ends and the
    # next begins would otherwise update high ids before low ones, against the ascending
    # order every other writer (a scoped build, a save) takes them in — a deadlock's recipe.
    for chunk in steps.chunks(steps.spread(sorted(work.changed, key=_by_param_id))):
        steps.run(_execute, _RESCORE_GUARDED, sorted(chunk, key=_by_param_id))
    reopens, rekeys, finished = work.entry_changes()
    for chunk in steps.chunks(sorted(reopens, key=_by_param_pid)):
        steps.run(_execute, _ENTRY_REOPEN, [{**x, "at": stored_at} for x in chunk])
    for chunk in steps.chunks(sorted(rekeys, key=_by_param_pid)):
        steps.run(_execute, _ENTRY_REKEY, chunk)
    finished.sort()
    for i in range(0, len(finished), 500):
        ids = ", ".join(str(int(p)) for p in finished[i : i + 500])
        steps.run(_finish_entries, ids)
    phases["writes"] = clock() - started - sum(phases.values())
    _log.info("full build: admission (%d steps so far)", steps.steps)
    admitted = work.admitted + admitted_first
    if entries:
        # Judged in a read (on SQLite no lock: 1.2 s at 20,000 patients held it before), then
        # stored in steps; the store's guards keep a patient claimed or dialed since as is.
        with reading(sessions) as session:
            verdicts = judge_waiting(session, now, settings)
        for until, callable_ids in verdicts.items():
            for chunk in steps.chunks(steps.spread(callable_ids)):
                steps.run_in_session(store_admissions, {until: sorted(chunk)}, now, settings)
            admitted += len(callable_ids)
    phases["admission"] = clock() - started - sum(phases.values())
    _log.info(
        "full build: done (%d steps; %.1f s writing, %.1f s paused after the writes; "
        "steps over 3 ms: %d, over 8 ms: %d; %.1f s checkpointing the WAL)",
        steps.steps,
        steps.writing,
        steps.paused,
        steps.over_3ms,
        steps.over_8ms,
        steps.checkpointing,
    )
    return work.result(closes, admitted, phases)


def _by_id(row: dict[str, Any]) -> int:
    return int(row["id"])


def _by_param_id(row: dict[str, Any]) -> int:
    return int(row["_id"])


def _by_param_pid(row: dict[str, Any]) -> int:
    return int(row["_pid"])


def _admit_queue_first(
    sessions: sessionmaker[Session], steps: _Steps, now: datetime, settings: QueueSettings
) -> int:
    """Judge the open entries without a live admission head of the queue first and store each
    read's verdicts at once, in steps (judge_in_claim_order: small reads at first, each a short
    read of its own), so the first claims of a new day find the head admitted within a fraction
    of a second of the build's start instead of after the whole queue is judged; returns how
    many were found callable. The pass after the writes judges what this one could not (entries
    the build reopens, a guard that kept a row claimed since as it was). An entry the build then
    finishes keeps the admission: it is a verdict on the patient, which the triggers clear when
    its facts change."""
    admitted = 0
    for verdicts in judge_in_claim_order(sessions, now, settings):
        for chunk in steps.chunks(verdicts):
            by_until: dict[datetime, list[int]] = {}
            for pid, until in chunk:
                by_until.setdefault(until, []).append(pid)
            steps.run_in_session(store_admissions, by_until, now, settings)
        if not admitted:
            _log.info("full build: first admissions stored (%d)", len(verdicts))
        admitted += len(verdicts)
    return admitted


class _Steps:
    """Each write its own short transaction, run by `writer` (build_queues_in_steps: on the
    caller's thread), then a pause in proportion to the step's time (`BuildSettings`: a
    cost-based delay), so the claims waiting meanwhile get their turn: on SQLite the write lock
    (a claim that found it taken waits in SQLite's busy handler), on both the CPU and the log."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        writer: Callable[[Callable[[], None]], None] | None = None,
        build: BuildSettings | None = None,
        queued: Callable[[Callable[[], None]], Future[None]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.writer = writer or (lambda write: write())
        # `queued` puts a step on the writer's thread and returns at once (build_queues_in_steps:
        # the caller's thread runs the steps in the order they were put there).
        self.queued = queued
        self._pending: list[Future[None]] = []
        self._failed: BaseException | None = None
        self._stopped = False
        self.build = build or BuildSettings()
        self.writing = self.paused = 0.0  # seconds, for the build's log
        # Steps longer than a claim behind them waits 3 ms and 8 ms for (SQLite's busy handler
        # tries again after 1, 3, 8, 18 ms): each such step can make a claim's tail.
        self.over_3ms = self.over_8ms = 0
        bind = sessions.kw.get("bind")
        self.sqlite = isinstance(bind, Engine) and bind.dialect.name == "sqlite"
        self.engine = bind if isinstance(bind, Engine) else None
        self.checkpointing = 0.0  # seconds, for the build's log
        self.largest = min(STEP_ROWS, SQLITE_STEP_ROWS if self.sqlite else POSTGRES_STEP_ROWS)
        self.size = self.largest
        self.steps = 0
        self._working: tuple[float, bool] | None = None  # (when asked, the answer)
        # PostgreSQL: steps may be queued while the build works on (`run`); SQLite's step size
        # follows each step's time, so there the build waits for each.
        self.can_overlap = queued is not None and not self.sqlite
        self.overlapping = False
        self._switch_interval: float | None = None  # Python's, to restore after overlapping

    def spread(self, rows: list[_R]) -> list[_R]:
        """PostgreSQL: `rows` (in the table's order) reordered so that each step takes every
        SPREAD_WAYS-th row of a stretch of the table, and each page is updated a few rows at a
        time in SPREAD_WAYS steps apart, not all its rows in one step: an update stays on its
        page (HOT: no new index entries) only while the page has room for the new version, and
        the room the versions of an earlier step take is freed (pruned) when a later step reads
        the page again (once no transaction can see them). So the room the first visit's rows
        leave when they move serves the later visits, where all a page's rows in one step found
        none. SQLite's pages are B-tree nodes: the rows stay in order there."""
        if self.sqlite:
            return rows
        return [row for start in range(SPREAD_WAYS) for row in rows[start::SPREAD_WAYS]]

    def chunks(self, rows: list[Any]) -> Iterator[list[Any]]:
        """`rows` a step at a time, each as many as the step size is when it is taken, and
        IDLE_STEP_ROWS while nobody works."""
        start = 0
        while start < len(rows):
            size = self.size
            if size < IDLE_STEP_ROWS and not self._agents_working():
                size = IDLE_STEP_ROWS
            end = start + size
            yield rows[start:end]
            start = end

    def run(self, write: Callable[..., object], *args: Any) -> None:
        """`write(connection, *args)` in a transaction of its own; while `overlapping`, queued
        on the writer's thread behind the steps before it, and the build goes on meanwhile (a
        queued step's failure is raised by the next `run` or by `finish_queued`)."""
        if not self.overlapping:
            self.run_in_session(_OnConnection(write), *args)
            return
        assert self.queued is not None
        self._raise_failed()
        step = partial(self._step, _OnConnection(write), args)
        self._pending.append(self.queued(partial(self._queued_step, step)))

    def queue_new_rows(self, name: str, rows: list[tuple[Any, ...]]) -> None:
        """While `overlapping`: new rows of `name`, queued on the writer's thread as one job
        that cuts them into steps as it comes to them, so the steps' size follows whether anyone
        works then (`chunks`), not when the rules found the rows: an agent who signs in while
        parts are still queued meets large steps only until the build asks again who works."""
        assert self.queued is not None
        self._raise_failed()
        self._pending.append(self.queued(partial(self._queued_rows, name, rows)))

    def _queued_rows(self, name: str, rows: list[tuple[Any, ...]]) -> None:
        for chunk in self.chunks(rows):
            if self._stopped or self._failed is not None:
                return
            self._queued_step(partial(self._step, _OnConnection(_insert_new), (name, chunk)))

    def overlap(self) -> None:
        """PostgreSQL: from now on `run` queues its steps and returns (until `finish_queued`),
        and Python's switch interval is OVERLAP_SWITCH_INTERVAL_S meanwhile."""
        if not self.can_overlap or self.overlapping:
            return
        self.overlapping = True
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, OVERLAP_SWITCH_INTERVAL_S))

    def finish_queued(self) -> None:
        """Wait for the queued steps, raise the first one's failure; no more overlapping."""
        self.overlapping = False
        for pending in self._pending:
            with suppress(BaseException):  # the failure is kept by _queued_step
                pending.result()
        self._pending.clear()
        self._restore_switch_interval()
        self._raise_failed()

    def stop(self) -> None:
        """The build is over (or failed): steps still queued are not written, and the one being
        written, if any, is waited for, so that the builds' lock (held by the caller around this)
        is not given to the next build while a step of this one still writes."""
        self._stopped = True
        self.overlapping = False
        for pending in self._pending:  # queued ones return at once once stopped
            with suppress(BaseException):  # a failure is kept by _queued_step
                pending.result()
        self._pending.clear()
        self._restore_switch_interval()

    def _restore_switch_interval(self) -> None:
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def _queued_step(self, step: Callable[[], None]) -> None:
        if self._stopped or self._failed is not None:
            return
        try:
            step()
        except BaseException as error:  # raised on the build's thread
            self._failed = error
            raise

    def _raise_failed(self) -> None:
        if self._failed is not None:
            raise self._failed

    def run_in_session(self, write: Callable[..., object], *args: Any) -> None:
        """`write(session, *args)` in a transaction of its own."""
        self.finish_queued()
        self.writer(partial(self._step, write, args))

    def _step(self, write: Callable[..., object], args: tuple[Any, ...]) -> None:
        """`write(session, *args)` in a transaction of its own, then the pause after it; on the
        writer's thread. A write that is one statement (`_ONE_STATEMENT`) is sent on PostgreSQL
        with no BEGIN and COMMIT around it (autocommit: the statement is its own transaction),
        two of the step's round trips fewer."""
        one = not self.sqlite and _one_statement(write, args)
        held: list[float] = []
        began = _clock()
        with transaction(self.sessions) as session:
            if one:
                session.connection(execution_options=_AUTOCOMMIT)
            write(session, *args)
        held.append(_clock() - began)
        if self.sqlite and self.engine is not None:
            try:
                _checkpoint(self.engine)
            except sqlite3.Error as error:  # the step is committed; a commit copies later
                _log.warning("the build's WAL checkpoint failed: %s", type(error).__name__)
            held.append(_clock() - began - held[0])
        self.steps += 1
        self.writing += held[0]
        self.over_3ms += held[0] > 0.003
        self.over_8ms += held[0] > 0.008
        if self.sqlite:
            rows = self.size * SQLITE_STEP_SECONDS / max(held[0], 1e-4)
            self.size = max(SQLITE_MIN_STEP_ROWS, min(self.largest, int(rows)))
        self.checkpointing += sum(held[1:])
        pause = self.build.pause_after(sum(held))
        if pause > 0 and self._agents_working():
            self.paused += pause
            _sleep(pause)

    def _agents_working(self) -> bool:
        """Whether any agent may be claiming: one signed in (not offline) or a patient held. The
        pauses are for their claims only; a build with nobody working (the nightly run) writes
        without them (100k: 45-48 s paced against ~23 s, bench/queue_build.py). Asked at most
        once every AGENTS_RECHECK_S, on a read that takes no lock; a state left behind by a
        console that was killed only means the build pauses, as it always did."""
        at = time.monotonic()
        if self._working is not None and at - self._working[0] < AGENTS_RECHECK_S:
            return self._working[1]
        with reading(self.sessions) as session:
            working = session.execute(_AGENTS_WORKING).first() is not None
        self._working = (at, working)
        return working


# How often a build asks again whether anyone works (an agent signing in mid-build is paced for
# within this long).
AGENTS_RECHECK_S = 1.0
# Anyone signed in, or any patient held (the holder index holds only held rows: migration 0022).
_AGENTS_WORKING = text(
    "SELECT 1 FROM agent_states WHERE state <> 'offline' "
    "UNION ALL SELECT 1 FROM queue_entries WHERE holder_id IS NOT NULL LIMIT 1"
)


def _checkpoint(engine: Engine) -> tuple[int, int, int]:
    """SQLite: the pages a step wrote to the WAL copied into the database file by the build, on
    a connection of its own, after each step (PASSIVE: it waits on no reader or writer, and a
    claim committing meanwhile only appends to the WAL). Otherwise the commit that takes the WAL
    past `wal_autocheckpoint` (1,000 pages) does the copying and its syncs before it returns,
    and with a build writing that many pages every few steps, that commit was as likely a
    claim's as the build's. Returns SQLite's answer: (busy, pages in the WAL, pages copied)."""
    raw = engine.raw_connection()
    try:
        busy, pages, copied = raw.driver_connection.execute(  # type: ignore[union-attr]
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).fetchone()
    finally:
        raw.close()
    return int(busy), int(pages), int(copied)


# The steps' clock and pause, apart so a test can stand in for the wall clock.
_clock = time.perf_counter
_sleep = time.sleep


@contextmanager
def _builds_wait(sessions: sessionmaker[Session]) -> Iterator[None]:
    """PostgreSQL: the builds' advisory lock for the whole run, on a connection of its own."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        yield
        return
    with bind.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": BUILD_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": BUILD_LOCK})
            conn.commit()


def _insert_new(conn: Connection, name: str, rows: list[tuple[Any, ...]]) -> None:
    """New rows; on SQLite, a row a scoped build wrote since the read is kept as it wrote it (on
    PostgreSQL the builds' lock is held: nobody else adds these rows). SQLite's steps come after
    the rules, on a thread with the GIL to itself (`alone`)."""
    sqlite = conn.dialect.name == "sqlite"
    insert_rows(conn, name, _COLUMN_TYPES[name], rows, or_ignore=sqlite, alone=sqlite)


@dataclass(frozen=True)
class _OnConnection:
    """`write(connection, *args)` as a write in a session: on the session's connection."""

    write: Callable[..., object]

    def __call__(self, session: Session, *args: Any) -> object:
        return self.write(session.connection(), *args)


_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def _execute(conn: Connection, statement: Any, params: list[dict[str, Any]]) -> None:
    """`statement` for each of `params` (SQLite: an executemany); on PostgreSQL its set-based
    twin (`_SET_BASED`), one statement for them all."""
    twin = _SET_BASED.get(statement) if conn.dialect.name == "postgresql" else None
    if twin is None:
        conn.execute(statement, params)
        return
    conn.execute(twin.sql, twin.values(params))


def _finish_entries(conn: Connection, ids: str) -> None:
    conn.exec_driver_sql(
        f"UPDATE queue_entries SET status = 'done' WHERE patient_id IN ({ids}) "
        "AND status = 'open' AND holder_id IS NULL"
    )


# The steps that are one statement each (PostgreSQL: sent without BEGIN and COMMIT, `_Steps._step`).
_ONE_STATEMENT: frozenset[Callable[..., object]] = frozenset({_insert_new, _finish_entries})


def _one_statement(write: Callable[..., object], args: tuple[Any, ...]) -> bool:
    """Whether a step is one statement on PostgreSQL."""
    if not isinstance(write, _OnConnection):
        return False
    if write.write is _execute:
        return args[0] in _SET_BASED
    return write.write in _ONE_STATEMENT


def _close_params(close: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "_id": close["id"],
        "at": at,
        "why": close["closed_reason"],
        "credit": close["success_attempt_id"],
    }


_TC = table(
    "tasks",
    column("id", Integer),
    column("status", String),
    column("closed_at", DateTime),
    column("closed_reason", String),
    column("success_attempt_id", Integer),
)
_CLOSE = (
    update(_TC)
    .where(_TC.c.id == bindparam("_id"), _TC.c.status == "open")
    .values(
        status="closed",
        closed_at=bindparam("at"),
        closed_reason=bindparam("why"),
        success_attempt_id=bindparam("credit"),
    )
)
_REOPEN_GUARDED = (
    update(_T)
    .where(
        _T.c.id == bindparam("_id"),
        _T.c.status == "closed",
        # The reopenable reasons as literals: an IN list cannot be bound in an executemany.
        text("closed_reason IN (" + ", ".join(f"'{r}'" for r in REOPENABLE) + ")"),
    )
    .values(REOPENED)
)
_RESCORE_GUARDED = (
    update(_T).where(_T.c.id == bindparam("_id"), _T.c.status == "open").values(RESCORED)
)
_QE = table(
    "queue_entries",
    column("patient_id", Integer),
    column("status", String),
    column("sort_key", NullType()),
    column("available_at", DateTime),
    column("holder_id", Integer),
)
_ENTRY_REOPEN = (
    update(_QE)
    .where(_QE.c.patient_id == bindparam("_pid"), _QE.c.status != "open")
    .values(sort_key=bindparam("sk"), status="open", available_at=bindparam("at"))
)
_ENTRY_REKEY = (
    update(_QE)
    .where(_QE.c.patient_id == bindparam("_pid"), _QE.c.status == "open")
    .values(sort_key=bindparam("sk"))
)


@dataclass(frozen=True)
class _SetBased:
    """PostgreSQL: an update of many rows as one statement over arrays of their values, in place
    of one statement a row: `arrays` are (array parameter, each row's parameter), `same` the
    parameters every row has alike. Its rows are joined to their table's key by a nested loop
    over the arrays (a step's 200 rows against a table of thousands: an index lookup each), so
    they are updated, and locked, in the order the step gives them: id order, as every other
    writer takes them (tests/queues/test_build_hot_updates.py holds it at 300 patients; a table
    of a dozen is hash-joined in its own order). Locking them first in a CTE (`ORDER BY … FOR
    UPDATE`) would hold that order under any plan, but took a 200-row step from ~3.9 to ~11 ms
    (each lock writes the row once more): not kept. 20,000 patients, 200-row rescore steps:
    5.4-6.0 ms against 8.6-8.7 ms a row at a time."""

    sql: TextClause
    arrays: tuple[tuple[str, str], ...]
    same: tuple[str, ...] = ()

    def values(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {name: [row[key] for row in rows] for name, key in self.arrays}
        for name in self.same:
            found[name] = rows[0][name]
        return found


_TASK_VALUES = (
    "FROM unnest(CAST(:ids AS INTEGER[]), CAST(:pps AS TEXT[]), CAST(:scs AS FLOAT8[]), "
    "CAST(:res AS TEXT[])) AS v(id, pp, sc, re) WHERE t.id = v.id"
)
_TASK_ARRAYS = (("ids", "_id"), ("pps", "pp"), ("scs", "sc"), ("res", "re"))
_RESCORED_SET = "priority_parts = CAST(v.pp AS JSON), score = v.sc, reason = v.re"
_ENTRY_VALUES = (
    "FROM unnest(CAST(:pids AS INTEGER[]), CAST(:sks AS FLOAT8[])) AS v(pid, sk) "
    "WHERE q.patient_id = v.pid"
)
_SET_BASED: dict[Any, _SetBased] = {
    _CLOSE: _SetBased(
        text(
            "UPDATE tasks AS t SET status = 'closed', closed_at = :at, closed_reason = v.why, "
            "success_attempt_id = v.credit FROM unnest(CAST(:ids AS INTEGER[]), "
            "CAST(:whys AS TEXT[]), CAST(:credits AS INTEGER[])) AS v(id, why, credit) "
            "WHERE t.id = v.id AND t.status = 'open'"
        ),
        (("ids", "_id"), ("whys", "why"), ("credits", "credit")),
        ("at",),
    ),
    _REOPEN_GUARDED: _SetBased(
        text(
            "UPDATE tasks AS t SET status = 'open', closed_at = NULL, closed_reason = NULL, "
            f"{_RESCORED_SET} {_TASK_VALUES} AND t.status = 'closed' AND t.closed_reason IN ("
            + ", ".join(f"'{r}'" for r in REOPENABLE)
            + ")"
        ),
        _TASK_ARRAYS,
    ),
    _RESCORE_GUARDED: _SetBased(
        text(f"UPDATE tasks AS t SET {_RESCORED_SET} {_TASK_VALUES} AND t.status = 'open'"),
        _TASK_ARRAYS,
    ),
    _ENTRY_REOPEN: _SetBased(
        text(
            "UPDATE queue_entries AS q SET sort_key = v.sk, status = 'open', available_at = :at "
            f"{_ENTRY_VALUES} AND q.status <> 'open'"
        ),
        (("pids", "_pid"), ("sks", "sk")),
        ("at",),
    ),
    _ENTRY_REKEY: _SetBased(
        text(
            f"UPDATE queue_entries AS q SET sort_key = v.sk {_ENTRY_VALUES} AND q.status = 'open'"
        ),
        (("pids", "_pid"), ("sks", "sk")),
    ),
}
