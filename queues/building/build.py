"""Build the outreach queues: campaign rules say which tasks are due; reconcile makes the tables agree.

Idempotent: running it twice changes nothing. A task that is no longer due closes as
"resolved_without_call", or as "filled" when a new fill answered it — then the last call that asked
is credited with it. Each patient with open tasks has one queue entry: one call for all subjects.

The rules run over the patients part by part (a few thousand each), and a worker thread writes each
part's new rows while the rules work out the next, so the database's share of a first build
(writing hundreds of thousands of tasks) runs on the other core, alongside the rules.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    Date,
    DateTime,
    Float,
    Integer,
    String,
    bindparam,
    column,
    func,
    select,
    table,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from queues.building.priority import patient_score
from queues.building.rules import default_rules
from queues.building.rules.base import DueTask, Rule, RuleContext
from queues.building.rules.snapshot import Snapshot, driver_rows, load_snapshot
from queues.building.scope import IN_SCOPE, drop_scope, set_scope
from queues.claims.admission import Judge, Undialed, admission_key, admit_entries, read_undialed
from queues.collector import collector_paused
from queues.settings import QueueSettings
from queues.store.bulk import insert_rows
from queues.store.models import Attempt, Task
from queues.timeutil import as_utc

RESOLVED_WITHOUT_CALL = "resolved_without_call"
FILLED = "filled"
CAMPAIGN_PAUSED = "campaign_paused"
# A task closed for these reasons comes back when its rule says it is due again.
REOPENABLE = (RESOLVED_WITHOUT_CALL, CAMPAIGN_PAUSED)


@dataclass(frozen=True)
class BuildResult:
    created: int
    reopened: int
    closed: int
    filled: int
    updated: int
    open_tasks: int
    queued_patients: int
    admitted: int = 0  # patients the calling rules were checked for ahead (queues.claims.admission)
    # Seconds each step took (read, rules, tasks, entries, admission): where a slow build goes.
    phases: dict[str, float] = field(default_factory=dict, compare=False)

    def describe(self) -> str:
        return (
            f"{self.open_tasks} tasks due for {self.queued_patients} patients: {self.created} new, "
            f"{self.reopened} reopened, {self.updated} rescored, {self.closed} closed "
            f"({self.filled} answered by a fill); calling rules checked ahead for "
            f"{self.admitted} patients callable now"
        )


def due_tasks(
    snapshot: Snapshot, now: datetime, settings: QueueSettings, rules: Iterable[Rule]
) -> dict[tuple[int, int, str], DueTask]:
    due: dict[tuple[int, int, str], DueTask] = {}
    rules = tuple(rules)
    for zone, part in snapshot.by_zone().items():
        due.update(_due_in(part, zone, now, settings, rules))  # a patient is in one zone only
    return due


@dataclass
class _Existing:
    """The task rows already stored, as light tuples keyed (campaign, patient, subject)."""

    open_by_key: dict[tuple[int, int, str], tuple[int, str, str | None]]
    reopenable: dict[tuple[int, int, str], int]
    known: set[tuple[int, int, str]]


def _existing_tasks(conn: Connection, scoped: bool) -> _Existing:
    # Plain driver tuples, and the stored JSON as text: most rows are unchanged, and comparing the
    # text the build itself wrote is far cheaper than decoding every row's priority parts.
    found = _Existing({}, {}, set())
    for tid, cid, pid, subject, status, closed_reason, reason, parts in driver_rows(
        conn,
        "SELECT id, campaign_id, patient_id, subject, status, closed_reason, reason, "
        "CAST(priority_parts AS TEXT) FROM tasks"
        + (f" WHERE patient_id {IN_SCOPE}" if scoped else ""),
    ):
        key = (cid, pid, subject)
        found.known.add(key)
        if status == "open":
            found.open_by_key[key] = (tid, reason, parts)
        elif closed_reason in REOPENABLE:
            found.reopenable[key] = tid
    return found


def build_queues(
    session: Session,
    now: datetime,
    settings: QueueSettings | None = None,
    rules: Iterable[Rule] | None = None,
    *,
    patients: Collection[int] | None = None,
) -> BuildResult:
    """Bring tasks and queue entries in line with the rules, in the caller's transaction.

    With `patients`, only theirs: their tasks and entries end as a build of everyone would leave
    them (every rule reads one patient's own rows), and nobody else's are read or touched. A
    supervisor's control uses it for the patients with work in one campaign; the result's counts
    are then theirs."""
    with collector_paused():
        return _build(session, now, settings or QueueSettings(), rules, patients)


def _build(
    session: Session,
    now: datetime,
    settings: QueueSettings,
    rules: Iterable[Rule] | None,
    patients: Collection[int] | None,
) -> BuildResult:
    rules = tuple(default_rules() if rules is None else rules)
    clock = time.perf_counter
    started = clock()
    session.flush()  # Core statements below do not autoflush the caller's pending rows
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # Builds take turns (a supervisor's pause while the morning build runs): the second reads
        # what the first committed, instead of failing on the tasks both would write. SQLite
        # writers take turns anyway (BEGIN IMMEDIATE, queues.store.db).
        conn.execute(select(func.pg_advisory_xact_lock(BUILD_LOCK)))
    scoped = patients is not None
    if patients is not None:
        set_scope(conn, patients)
    snapshot = load_snapshot(session, now, scoped=scoped)
    existing = _existing_tasks(conn, scoped)
    entries = _existing_entries(conn, scoped)
    # What the calling rules read of everyone who may get a new queue entry, read now: on the
    # writer's thread it would hold up the writes (it needs the GIL the rules hold).
    undialed = read_undialed(conn, [pid for pid in snapshot.patients if pid not in entries], now)
    phases = {"read": clock() - started, "rules": 0.0}
    work = _Work(conn, existing, entries, undialed, now, settings)

    # Part by part: the rules find a part's due tasks while the database writes the part before
    # (the work on new rows — their indexes and foreign-key checks — is about as long as the
    # rules' on PostgreSQL, half as long on SQLite, and runs on the other core).
    with _Writer() as writer:
        for zone, part in snapshot.parts(PART_PATIENTS):
            mark = clock()
            found = _due_in(part, zone, now, settings, rules)
            phases["rules"] += clock() - mark
            work.take(found, snapshot, writer)
    phases["tasks and entries"] = clock() - started - sum(phases.values())

    stale_ids = [v[0] for key, v in existing.open_by_key.items() if key not in work.due]
    closes = list(_closings(session, snapshot, _stale_rows(session, stale_ids), now))
    if closes:
        session.execute(update(Task), closes)
    if work.reopen:
        conn.execute(_REOPEN, work.reopen)
    if work.changed:
        conn.execute(_RESCORE, work.changed)
    _update_entries(conn, work, now)
    phases["updates"] = clock() - started - sum(phases.values())
    # The claim-time check, done ahead, so most claims are one statement (queues.claims.fast_claimer), for
    # the entries that were there before (the new ones were written with theirs).
    admitted = work.admitted
    if entries:
        admitted += admit_entries(session, now, settings, scoped=scoped)
    if scoped:
        drop_scope(conn)
    phases["admission"] = clock() - started - sum(phases.values())
    return work.result(closes, admitted, phases)


# The advisory lock builds take turns on, in the build's transaction (any fixed 64-bit number).
BUILD_LOCK = 0x6F75747265616368  # "outreach"

# Patients per part of a build: small enough that the last part's writes, which nothing overlaps,
# are short; large enough that a part's statements cost little next to its rows.
PART_PATIENTS = 5_000


def _due_in(
    part: Snapshot, zone: str, now: datetime, settings: QueueSettings, rules: tuple[Rule, ...]
) -> dict[tuple[int, int, str], DueTask]:
    ctx = RuleContext(part, now, now.astimezone(ZoneInfo(zone)).date(), settings)
    due: dict[tuple[int, int, str], DueTask] = {}
    for rule in rules:
        for task in rule(ctx):  # a build's half a million tasks pass here: kept lean
            if task is not None:
                key = (task.campaign_id, task.patient_id, task.subject)
                if key not in due:
                    due[key] = task
    return due


class _Work:
    """What a build found so far, part by part, against what was stored."""

    def __init__(
        self,
        conn: Connection,
        existing: _Existing,
        entries: dict[int, tuple[str, float, int | None]],
        undialed: Undialed,
        now: datetime,
        settings: QueueSettings,
    ) -> None:
        self.conn, self.existing, self.entries = conn, existing, entries
        self.undialed = {head.patient_id: (head, phones) for head, phones in undialed}
        self.sqlite = conn.dialect.name == "sqlite"
        self.stored_at = _driver_value(_bind_utc(now), self.sqlite)
        self.rules_key = admission_key(settings)
        self.judge = Judge(settings, as_utc(now))
        self.due: dict[tuple[int, int, str], DueTask] = {}
        self.reopen: list[dict[str, Any]] = []
        self.changed: list[dict[str, Any]] = []
        self.queued: dict[int, float] = {}  # patient -> sort key of their entry
        self.created = self.admitted = 0
        self._day_text: dict[date, Any] = {}
        self._admissions: dict[datetime | None, tuple[Any, ...]] = {}

    def take(
        self, found: dict[tuple[int, int, str], DueTask], snapshot: Snapshot, writer: _Writer
    ) -> None:
        """Sort one part's due tasks into new, reopened and rescored, and hand the new tasks and
        queue entries to the writer."""
        existing, stored_at, new = self.existing, self.stored_at, []
        open_by_key, known, reopenable = existing.open_by_key, existing.known, existing.reopenable
        due, day_text = self.due, self._day_text
        scores: dict[int, list[float]] = defaultdict(list)
        for key, t in found.items():
            due[key] = t
            current = open_by_key.get(key)
            if current is None and key in known and key not in reopenable:
                # Done (or closed for good) already, as a call today left it: no work, so no
                # place in the queue. Counting it reopened the entry of a patient with nothing
                # open, and the floor's count moved at the next build with no call in between.
                continue
            scores[t.patient_id].append(t.score)
            if current is not None:
                text = _json_text(t.priority_parts)
                if current[1] == t.reason and (
                    current[2] == text
                    or (current[2] is not None and orjson.loads(current[2]) == t.priority_parts)
                ):
                    continue
                self.changed.append({"_id": current[0], "pp": text, "sc": t.score, "re": t.reason})
            elif key in reopenable:
                self.reopen.append(
                    {
                        "_id": reopenable[key],
                        "pp": _json_text(t.priority_parts),
                        "sc": t.score,
                        "re": t.reason,
                    }
                )
            elif key not in known:
                due_on = t.due_on
                if due_on is not None:  # a build's due dates are a few hundred days
                    try:
                        due_on = day_text[due_on]
                    except KeyError:
                        due_on = day_text[due_on] = _driver_value(due_on, self.sqlite)
                new.append(
                    (
                        t.patient_id,
                        t.campaign_id,
                        t.prescription_id,
                        t.subject,
                        t.reason,
                        "open",
                        due_on,
                        _json_text(t.priority_parts),
                        t.score,
                        stored_at,
                    )
                )
        writer.submit(_insert_rows, self.conn, "tasks", new)
        self.created += len(new)
        # A new entry is written with its admission (queues.claims.admission), not written and then
        # rewritten by admit_entries: on PostgreSQL that is a second version of every new row.
        rows: list[tuple[Any, ...]] = []
        entries, undialed, judge, queued = self.entries, self.undialed, self.judge, self.queued
        for patient_id, patient_scores in scores.items():
            sort_key = queued[patient_id] = -patient_score(patient_scores)  # lower first
            if patient_id in entries:
                continue
            read = undialed.get(patient_id)
            until = judge.until(*read) if read is not None else None
            admission = self._admissions.get(until)
            if admission is None:  # the verdicts of a build are a few dozen
                admission = self._admissions[until] = (
                    (None, None, None)
                    if until is None
                    else (stored_at, _driver_value(_bind_utc(until), self.sqlite), self.rules_key)
                )
            if until is not None:
                self.admitted += 1
            pharmacy_id = snapshot.patients[patient_id].pharmacy_id
            rows.append((patient_id, pharmacy_id, "open", sort_key, stored_at, *admission))
        writer.submit(_insert_rows, self.conn, "queue_entries", rows)

    def entry_changes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
        """The queue entries that were there before: to reopen and to re-sort (patient, sort
        key), and the patients whose entry is done (nothing due, nobody holding it)."""
        reopens, rekeys = [], []
        for patient_id, key in self.queued.items():
            entry = self.entries.get(patient_id)
            if entry is None:
                continue
            if entry[0] != "open":
                reopens.append({"_pid": patient_id, "sk": key})
            elif entry[1] != key:
                rekeys.append({"_pid": patient_id, "sk": key})
        finished = [
            pid
            for pid, (status, _key, holder) in self.entries.items()
            if pid not in self.queued and status == "open" and holder is None
        ]
        return reopens, rekeys, finished

    def result(
        self, closes: list[dict[str, Any]], admitted: int, phases: dict[str, float]
    ) -> BuildResult:
        return BuildResult(
            self.created,
            len(self.reopen),
            len(closes),
            sum(1 for c in closes if c["closed_reason"] == FILLED),
            len(self.changed),
            len(self.due),
            len(self.queued),
            admitted,
            {k: round(v, 3) for k, v in phases.items()},
        )


class _Writer:
    """Runs a build's statements in order on its connection, on one worker thread, so the
    database writes one part while the rules work on the next. The thread holds the GIL only to
    hand a part over: it then waits on the server's socket (PostgreSQL) or in SQLite's own code,
    which runs the one statement a part is (`_insert_rows`) without it.

    The build's own thread leaves the connection to the writer until the `with` block ends; the
    block ends only when the writer is done with it. After a statement fails the rest do not run,
    and the failure is raised by the next `submit` or when the block ends."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="queue-build-writer")
        self._failed: BaseException | None = None
        self._stopping = False

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        if self._failed is not None:  # no use working out more rows to write
            raise self._failed
        self._pool.submit(self._run, fn, *args)

    def _run(self, fn: Callable[..., object], *args: Any) -> None:
        if self._failed is not None or self._stopping:
            return
        try:
            fn(*args)
        except BaseException as error:
            self._failed = error

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self._stopping = kind is not None  # the build failed: what is queued need not run
        self._pool.shutdown(wait=True)
        if kind is None and self._failed is not None:
            raise self._failed


def _update_entries(conn: Connection, work: _Work, now: datetime) -> None:
    """Reopen, re-sort and finish the queue entries that were there before."""
    available_at = _bind_utc(now)
    reopens, rekeys, finished = work.entry_changes()
    if reopens:
        conn.execute(
            update(_Q)
            .where(_Q.c.patient_id == bindparam("_pid"))
            .values(sort_key=bindparam("sk"), status="open", available_at=available_at),
            reopens,
        )
    if rekeys:
        conn.execute(
            update(_Q).where(_Q.c.patient_id == bindparam("_pid")).values(sort_key=bindparam("sk")),
            rekeys,
        )
    for i in range(0, len(finished), 500):
        conn.execute(
            update(_Q).where(_Q.c.patient_id.in_(finished[i : i + 500])).values(status="done")
        )


# The tasks table with its JSON column as plain text: the build serialises priority parts once
# and compares and writes that text, without a JSON type processing every row.
_T = table(
    "tasks",
    column("id", Integer),
    column("patient_id", Integer),
    column("campaign_id", Integer),
    column("prescription_id", Integer),
    column("subject", String),
    column("reason", String),
    column("status", String),
    column("due_on", Date),
    column("priority_parts", NullType()),
    column("score", Float),
    column("created_at", DateTime),
    column("closed_at", DateTime),
    column("closed_reason", String),
)
# What a rescore and a reopen write (queues.building.stepwise writes them too, guarded).
RESCORED: dict[str, Any] = {
    "priority_parts": bindparam("pp"),
    "score": bindparam("sc"),
    "reason": bindparam("re"),
}
REOPENED: dict[str, Any] = {"status": "open", "closed_at": None, "closed_reason": None, **RESCORED}
_REOPEN = update(_T).where(_T.c.id == bindparam("_id")).values(REOPENED)
_RESCORE = update(_T).where(_T.c.id == bindparam("_id")).values(RESCORED)


# The columns a build writes new rows of, in the order its tuples hold them, with the PostgreSQL
# type a binary COPY sends each as. JSON goes as text (the json type's binary form is its text),
# so the build's own serialisation is what is stored.
_COLUMN_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "tasks": (
        ("patient_id", "int4"),
        ("campaign_id", "int4"),
        ("prescription_id", "int4"),
        ("subject", "text"),
        ("reason", "text"),
        ("status", "text"),
        ("due_on", "date"),
        ("priority_parts", "text"),
        ("score", "float8"),
        ("created_at", "timestamp"),
    ),
    "queue_entries": (
        ("patient_id", "int4"),
        ("pharmacy_id", "int4"),
        ("status", "text"),
        ("sort_key", "float8"),
        ("available_at", "timestamp"),
        ("admitted_at", "timestamp"),
        ("admitted_until", "timestamp"),
        ("admitted_key", "text"),
    ),
}


def _insert_rows(conn: Connection, table_name: str, rows: list[tuple[Any, ...]]) -> None:
    """New tasks or queue entries, values already as the columns store them (queues.store.bulk)."""
    insert_rows(conn, table_name, _COLUMN_TYPES[table_name], rows)


def _json_text(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


def _driver_value(value: date | None, sqlite: bool) -> Any:
    """A date or naive UTC time as the driver takes it: SQLAlchemy's text formats on SQLite."""
    if not sqlite or value is None:
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value.isoformat()


def _bind_utc(value: datetime) -> datetime:
    """What the models' UTC column stores: naive UTC."""
    return as_utc(value).replace(tzinfo=None)


def _stale_rows(session: Session, ids: list[int]) -> list[Any]:
    rows: list[Any] = []
    for i in range(0, len(ids), 500):
        rows.extend(
            session.execute(
                select(
                    Task.id,
                    Task.campaign_id,
                    Task.patient_id,
                    Task.subject,
                    Task.prescription_id,
                    Task.created_at,
                ).where(Task.id.in_(ids[i : i + 500]))
            ).all()
        )
    rows.sort(key=lambda r: r.id)
    return rows


def _closings(
    session: Session, snapshot: Snapshot, stale: list[Any], now: datetime
) -> Iterator[dict[str, Any]]:
    """Close tasks no longer due; a refill or adherence task answered by a new fill is "filled"
    and credited to the last call made about it before that fill."""
    class_fills: dict[tuple[int, str], date] = {}
    rx_last: dict[int, date] = {}
    for rx in snapshot.prescriptions:
        fills = snapshot.fills.get(rx.id)
        if not fills:
            continue
        rx_last[rx.id] = fills[-1][0]
        if rx.pqa_class:
            key = (rx.patient_id, rx.pqa_class)
            class_fills[key] = max(class_fills.get(key, fills[-1][0]), fills[-1][0])
    active_campaigns = {cid for cid, _ in snapshot.campaigns.values()}
    asked: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    patients = sorted({r.patient_id for r in stale})
    for chunk in (patients[i : i + 500] for i in range(0, len(patients), 500)):
        for pid, started, attempt_id in session.execute(
            select(Attempt.patient_id, Attempt.started_at, Attempt.id)
            .where(Attempt.patient_id.in_(chunk))
            .order_by(Attempt.started_at)
        ):
            asked[pid].append((started, attempt_id))
    for r in stale:
        last_fill: date | None = None
        if r.prescription_id is not None:
            last_fill = rx_last.get(r.prescription_id)
        elif r.subject.startswith("pdc:"):
            last_fill = class_fills.get((r.patient_id, r.subject.split(":")[1]))
        reason, credit = RESOLVED_WITHOUT_CALL, None
        if r.campaign_id not in active_campaigns:
            reason = CAMPAIGN_PAUSED
        elif last_fill is not None and last_fill >= r.created_at.date():
            reason = FILLED
            before = [
                a
                for started, a in asked.get(r.patient_id, [])
                if r.created_at <= started and started.date() <= last_fill
            ]
            credit = before[-1] if before else None
        yield {
            "id": r.id,
            "status": "closed",
            "closed_at": now,
            "closed_reason": reason,
            "success_attempt_id": credit,
        }


def _existing_entries(conn: Connection, scoped: bool) -> dict[int, tuple[str, float, int | None]]:
    """patient -> (status, sort key, holder) of every queue entry (in build_scope if scoped)."""
    return {
        pid: (status, sort_key, holder_id)
        for pid, status, sort_key, holder_id in driver_rows(
            conn,
            "SELECT patient_id, status, sort_key, holder_id FROM queue_entries"
            + (f" WHERE patient_id {IN_SCOPE}" if scoped else ""),
        )
    }


_Q = table(
    "queue_entries",
    column("patient_id", Integer),
    column("pharmacy_id", Integer),
    column("status", String),
    column("sort_key", Float),
    column("available_at", DateTime),
    column("holder_id", Integer),
)
