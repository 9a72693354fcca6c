"""Claim next patient under load: queues.claims.claiming.claim_next against a bare dequeue floor.

    bench/claim.py --backend sqlite|postgres --tasks N --claimers K [--json] [--database URL]

Fills a fresh database with N open tasks (one per patient, over three pharmacies in three time
zones, every patient callable at the benchmark's clock), then runs K concurrent claimers until every
task is claimed, three times on the same rows:

- floor: a bare dequeue — PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED LIMIT 1` + `UPDATE` in one
  transaction, SQLite one `UPDATE … RETURNING` — then the rows are put back as they were (each
  phase starts from the same compacted table, the calling rules checked ahead on every row);
- product: `claim_next` exactly as the console calls it, one transaction per claim, each claim by a
  console that holds nobody yet (as in tests/queues/test_claiming.py), so the queue drains by claims;
- SQLite only: the floor again with the audit row every claim must write (the same INSERT the
  product's claim trigger makes), to show how much of the budget the audit log alone takes;
- PostgreSQL only: pgqueuer's dequeue of the same number of jobs on the same database, at batch 1
  and batch 10.

Claimers are threads, each with its own connection; on PostgreSQL they can be spread over several
processes (`--processes`), since claim_next's Python work holds the GIL. Double claims are counted
from what each claimer was told and checked against the rows afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import random
import sys
import threading
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from _common import (
    TASK_COLUMNS,
    analyze,
    base_parser,
    bulk_load,
    emit_json,
    fmt,
    is_postgres,
    libpq_url,
    load_plain_patients,
    log,
    percentile,
    print_table,
    ratio,
    scratch_database,
    server_url,
    sqlite_synchronous,
    sync_sequences,
)
from sqlalchemy import Engine, func, or_, select, text, update

from queues.claims import claiming
from queues.claims.admission import admit_entries
from queues.claims.fast_claimer import Claimer
from queues.store.chain import POSTGRES_CHAINS
from queues.store.db import make_engine, session_factory, transaction, upgrade
from queues.store.models import AuditEvent, Campaign, Pharmacy, QueueEntry

# A Wednesday: 12:00 in Chicago, 13:00 in New York, 10:00 in Los Angeles — inside every window.
NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
LEASE = 300
USER_BLOCK = 64  # user ids a claimer takes from the shared counter at a time
PHARMACIES = (  # code, zone, state, ZIP, area code
    ("BTX", "America/Chicago", "TX", "75201", "214"),
    ("BNY", "America/New_York", "NY", "10001", "212"),
    ("BCA", "America/Los_Angeles", "CA", "90012", "213"),
)
PGQ_ENTRYPOINT = "claim"

# The floor reads the same partial index as claim_next (queues.store.models.CLAIMABLE): its predicate
# is spelled out so that both planners use the index, as a bare dequeue on this schema would.
CLAIMABLE = "status = 'open' AND claimed_at IS NULL AND blocked_reason IS NULL"
BASELINE_SQL = {
    "postgresql": (
        f"SELECT patient_id FROM queue_entries WHERE {CLAIMABLE} "
        "ORDER BY sort_key, patient_id LIMIT 1 FOR UPDATE SKIP LOCKED",
        "UPDATE queue_entries SET status = 'claimed', holder_id = %s WHERE patient_id = %s",
    ),
    "sqlite": (
        "UPDATE queue_entries SET status = 'claimed', holder_id = ? WHERE patient_id = "
        f"(SELECT patient_id FROM queue_entries WHERE {CLAIMABLE} "
        "ORDER BY sort_key, patient_id LIMIT 1) RETURNING patient_id",
        "",
    ),
}

# The audited floor (SQLite): the bare dequeue plus the claim's audit row, written as the claim's
# own trigger writes it (migration 0009), so that the two differ only in the lease's bookkeeping.
# The audit log's seal (migration 0015, AFTER INSERT ON audit_events) chains this row as it chains
# the claim's: the floor pays for the hash chain too (unless --audit-chain off drops the seal).
FLOOR_AUDIT_TRIGGER = (
    "CREATE TRIGGER bench_floor_audit AFTER UPDATE OF status ON queue_entries "
    "WHEN NEW.status = 'claimed' AND OLD.status = 'open' BEGIN "
    "INSERT INTO audit_events (at, user_id, action, patient_id, detail) VALUES "
    "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000', NEW.holder_id, 'claim', NEW.patient_id, '{}'); "
    "END"
)
# PostgreSQL's: the claim writes its audit row in the same statement (queues.claims.fast_claimer);
# the floor's is written by a trigger in the dequeue's transaction, sealed alike (migration 0015).
FLOOR_AUDIT_TRIGGER_PG = (
    "CREATE FUNCTION bench_floor_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO audit_events (at, user_id, action, patient_id, detail) VALUES "
    "(now() AT TIME ZONE 'UTC', NEW.holder_id, 'claim', NEW.patient_id, '{}'); RETURN NULL; END $$",
    "CREATE TRIGGER bench_floor_audit AFTER UPDATE OF status ON queue_entries FOR EACH ROW "
    "WHEN (NEW.status = 'claimed' AND OLD.status = 'open') EXECUTE FUNCTION bench_floor_audit()",
)
FLOOR_AUDIT_DROP_PG = (
    "DROP TRIGGER bench_floor_audit ON queue_entries",
    "DROP FUNCTION bench_floor_audit()",
)


# ---------------------------------------------------------------------------------------------
# The data


@dataclass(frozen=True)
class World:
    pharmacy_ids: list[int]
    first_user: int
    users: int


def fill(engine: Engine, tasks: int, users: int, seed: int = 7) -> World:
    rng = random.Random(seed)
    sessions = session_factory(engine)
    pharmacy_ids: list[int] = []
    campaign_of: dict[int, int] = {}
    with transaction(sessions) as s:
        for code, zone, state, _zip, area in PHARMACIES:
            ph = Pharmacy(
                code=code,
                name=f"{code} Bench Pharmacy",
                caller_id=f"+1{area}5550100",
                callback_number=f"+1{area}5550101",
                timezone=zone,
                state=state,
                opens_at=dtime(8),
                closes_at=dtime(20),
                priority=0,
            )
            s.add(ph)
            s.flush()
            camp = Campaign(
                pharmacy_id=ph.id,
                kind="refill_reminder",
                name="Refill reminders",
                script_id="refill_reminder",
                weight=1.0,
                attempt_limit=3,
            )
            s.add(camp)
            s.flush()
            pharmacy_ids.append(ph.id)
            campaign_of[ph.id] = camp.id
        first_patient = (s.scalar(text("SELECT coalesce(max(id), 0) + 1 FROM patients"))) or 1
        first_user = (s.scalar(text("SELECT coalesce(max(id), 0) + 1 FROM users"))) or 1
    site = [(pharmacy_ids[i], *PHARMACIES[i]) for i in range(len(PHARMACIES))]

    def where(k: int) -> tuple[int, str, str, str, str, str]:
        return site[k % len(site)]

    pids = range(first_patient, first_patient + tasks)
    log(f"loading {tasks:,} patients, phones, tasks and queue entries")
    load_plain_patients(
        engine,
        (
            (
                pid,
                where(k)[0],
                f"B{k:08d}",
                f"Bench{k}",
                date(1940 + k % 50, 1 + k % 12, 1 + k % 28),
                "es" if k % 9 == 0 else "en",
                where(k)[4],
                where(k)[3],
            )
            for k, pid in enumerate(pids)
        ),
    )
    bulk_load(
        engine,
        "phones",
        ["patient_id", "number", "kind", "rank", "wrong_number", "do_not_call"],
        (
            (pid, f"+1{where(k)[5]}{2_000_000 + k % 7_000_000:07d}", "mobile", 0, False, False)
            for k, pid in enumerate(pids)
        ),
    )
    bulk_load(
        engine,
        "tasks",
        TASK_COLUMNS,
        (
            (
                pid,
                campaign_of[where(k)[0]],
                f"rx:{pid}",
                "a chronic medication runs out soon",
                "open",
                date(2026, 12, 3),
                {"days_to_run_out": 1},
                NOW,
                1.0,
            )
            for k, pid in enumerate(pids)
        ),
    )
    bulk_load(
        engine,
        "queue_entries",
        ["patient_id", "pharmacy_id", "status", "sort_key", "available_at"],
        ((pid, where(k)[0], "open", rng.random() * 1000.0, NOW) for k, pid in enumerate(pids)),
    )
    log(f"loading {users:,} users (one console per claim) and their pharmacies")
    uids = range(first_user, first_user + users)
    bulk_load(
        engine,
        "users",
        ["id", "username", "display_name", "role", "password_hash", "active"],
        ((u, f"bench{u}", f"Bench agent {u}", "agent", "-", True) for u in uids),
    )
    bulk_load(
        engine,
        "user_pharmacies",
        ("user_id", "pharmacy_id"),
        ((u, ph) for u in uids for ph in pharmacy_ids),
    )
    sync_sequences(engine, ("patients", "users", "phones", "tasks"))
    return World(pharmacy_ids, first_user, users)


def reset_queue(engine: Engine) -> None:
    """Put the entries the floor took back open and unheld, as they were before it (the floor
    writes no audit rows, and the audit log is append-only: there is nothing else to undo)."""
    with engine.begin() as conn:
        conn.execute(
            update(QueueEntry)
            .where(or_(QueueEntry.status != "open", QueueEntry.holder_id.is_not(None)))
            .values(
                status="open",
                holder_id=None,
                lease_token=None,
                claimed_at=None,
                lease_expires_at=None,
                blocked_reason=None,
                available_at=NOW,
            )
        )


def compact(engine: Engine) -> None:
    """The queue rewritten compactly, fresh statistics and (SQLite) an empty WAL: the state a
    timed phase starts from."""
    if is_postgres(engine):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (FULL, ANALYZE) queue_entries")
            conn.exec_driver_sql("VACUUM ANALYZE")
        return
    raw = engine.raw_connection()
    try:
        lite: Any = raw.driver_connection
        lite.execute("VACUUM")
        lite.execute("ANALYZE")
        lite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def admission_state() -> str:
    return (
        "on (queues.claims.fast_claimer.Claimer as the console claims: a head admitted ahead is taken in one "
        "statement, any other gets claim_next's full check)"
    )


# ---------------------------------------------------------------------------------------------
# Claimers


@dataclass
class Job:
    kind: str  # product | baseline | pgqueuer
    url: str
    threads: int
    pharmacy_ids: list[int]
    first_user: int
    batch: int = 1
    limit: int = 0  # pgqueuer: stop after this many jobs
    deadline_s: float = 0.0  # stop after this long (0: run until the queue is empty)
    no_compliance: bool = False  # claim_next(admit=None): the foundation's claim, no window checks


@dataclass
class Outcome:
    ids: array[int] = field(default_factory=lambda: array("q"))
    users: array[int] = field(default_factory=lambda: array("q"))
    latencies: array[float] = field(default_factory=lambda: array("d"))
    start: float = float("inf")
    end: float = 0.0
    errors: list[str] = field(default_factory=list)
    stopped_early: bool = False
    one_statement: int = 0  # claims the Claimer made in one statement
    full_claims: int = 0  # and through claim_next (the head needed the full check, or none left)

    def merge(self, other: Outcome) -> None:
        self.one_statement += other.one_statement
        self.full_claims += other.full_claims
        self.ids.extend(other.ids)
        self.users.extend(other.users)
        self.latencies.extend(other.latencies)
        self.start = min(self.start, other.start)
        self.end = max(self.end, other.end)
        self.errors.extend(other.errors)
        self.stopped_early = self.stopped_early or other.stopped_early


class Users:
    """Fresh user ids from a counter shared by every claimer (and process)."""

    def __init__(self, counter: Any, first: int) -> None:
        self.counter, self.first = counter, first
        self.next, self.stop = 0, 0
        # A process's claimer threads share this: unguarded, two of them could take the same id
        # or each a new block (a 1,000,000-task run ran out of its users that way).
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            if self.next == self.stop:
                with self.counter.get_lock():
                    start = self.counter.value
                    self.counter.value = start + USER_BLOCK
                self.next, self.stop = start, start + USER_BLOCK
            self.next += 1
            return self.first + self.next - 1


def _product_claimer(
    job: Job, engine: Engine, users: Users, gate: threading.Barrier, out: Outcome
) -> Outcome:
    sessions = session_factory(engine)
    with sessions() as warm:  # open this thread's connection before the clock starts
        warm.execute(text("SELECT 1"))
    # As the console claims (console.shift): one Claimer per console, its own connection.
    claimer = Claimer(engine, sessions)
    claimer.open()
    gate.wait()
    out.start = time.monotonic()
    deadline = out.start + job.deadline_s if job.deadline_s else 0.0
    clock = time.perf_counter
    try:
        _product_claims(job, claimer, sessions, users, out, deadline, clock)
    finally:  # a claimer that fails keeps the count of how it claimed
        out.end = time.monotonic()
        out.one_statement, out.full_claims = claimer.fast, claimer.full
        claimer.close()
    return out


def _product_claims(
    job: Job,
    claimer: Claimer,
    sessions: Any,
    users: Users,
    out: Outcome,
    deadline: float,
    clock: Callable[[], float],
) -> None:
    while True:
        user = users.take()
        t0 = clock()
        if job.no_compliance:
            with transaction(sessions) as s:
                got = claiming.claim_next(
                    s,
                    user_id=user,
                    pharmacy_ids=job.pharmacy_ids,
                    now=NOW,
                    lease_seconds=LEASE,
                    admit=None,
                )
        else:
            got = claimer.next(
                user_id=user, pharmacy_ids=job.pharmacy_ids, now=NOW, lease_seconds=LEASE
            )
        t1 = clock()
        if got is None:
            break
        if got.resumed:
            out.errors.append(f"user {user} was handed a patient it already held")
        out.ids.append(got.patient_id)
        out.users.append(user)
        out.latencies.append(t1 - t0)
        if deadline and time.monotonic() > deadline:
            out.stopped_early = True
            break


def _baseline_claimer(
    job: Job, engine: Engine, users: Users, gate: threading.Barrier, out: Outcome
) -> Outcome:
    clock = time.perf_counter
    if is_postgres(engine):
        import psycopg

        pick, mark = BASELINE_SQL["postgresql"]
        with psycopg.connect(libpq_url(job.url), autocommit=True) as conn:
            gate.wait()
            out.start = time.monotonic()
            deadline = out.start + job.deadline_s if job.deadline_s else 0.0
            while True:
                user = users.take()
                t0 = clock()
                with conn.transaction():
                    row = conn.execute(pick).fetchone()
                    if row is not None:
                        conn.execute(mark, (user, row[0]))
                t1 = clock()
                if row is None:
                    break
                out.ids.append(row[0])
                out.users.append(user)
                out.latencies.append(t1 - t0)
                if deadline and time.monotonic() > deadline:
                    out.stopped_early = True
                    break
    else:
        sql, _ = BASELINE_SQL["sqlite"]
        raw = engine.raw_connection()  # the product's pragmas: WAL, same synchronous, busy_timeout
        try:
            lite: Any = raw.driver_connection
            gate.wait()
            out.start = time.monotonic()
            deadline = out.start + job.deadline_s if job.deadline_s else 0.0
            while True:
                user = users.take()
                t0 = clock()
                rows = lite.execute(sql, (user,)).fetchall()  # autocommit: one statement
                t1 = clock()
                if not rows:
                    break
                out.ids.append(rows[0][0])
                out.users.append(user)
                out.latencies.append(t1 - t0)
                if deadline and time.monotonic() > deadline:
                    out.stopped_early = True
                    break
        finally:
            raw.close()
    out.end = time.monotonic()
    return out


async def _pgqueuer_consumers(job: Job, counter: Any, ready: Any) -> Outcome:
    import psycopg
    from pgqueuer.queries import EntrypointExecutionParameter, Queries
    from pgqueuer.types import QueueEntrypoint, QueueManagerId

    out = Outcome()
    conns = [
        await psycopg.AsyncConnection.connect(libpq_url(job.url), autocommit=True)
        for _ in range(job.threads)
    ]
    params = {QueueEntrypoint(PGQ_ENTRYPOINT): EntrypointExecutionParameter(concurrency_limit=0)}
    clock = time.perf_counter

    async def consume(conn: Any) -> None:
        queries = Queries.from_psycopg_connection(conn)
        manager = QueueManagerId(uuid.uuid4())
        while True:
            with counter.get_lock():
                if counter.value >= job.limit:
                    return
                counter.value += job.batch
            t0 = clock()
            jobs = await queries.dequeue(
                batch_size=job.batch,
                entrypoints=params,
                queue_manager_id=manager,
                global_concurrency_limit=None,
                heartbeat_timeout=timedelta(days=1),  # never hand a picked job out again
            )
            t1 = clock()
            if not jobs:
                return
            for j in jobs:
                out.ids.append(int(j.id))
            out.latencies.append(t1 - t0)

    ready()
    out.start = time.monotonic()
    await asyncio.gather(*(consume(c) for c in conns))
    out.end = time.monotonic()
    for c in conns:
        await c.close()
    return out


def _warm_up(engine: Engine) -> None:
    """Load what the first claim would (ZIP and phone-number tables, holidays) before the clock
    starts: a console pays it once per shift, not per claim. Read-only."""
    try:
        from queues.compliance.patient import patient_verdict
    except ImportError:  # no compliance module: nothing to warm
        return
    with session_factory(engine)() as s:
        first = s.scalar(select(func.min(QueueEntry.patient_id)))
        if first is not None:
            patient_verdict(s, first, NOW)
        s.rollback()


def run_in_process(job: Job, counter: Any, ready: Any) -> Outcome:
    """Run job.threads claimers in this process; `ready()` returns when every process may start."""
    if job.kind == "pgqueuer":
        return asyncio.run(_pgqueuer_consumers(job, counter, ready))
    engine = make_engine(job.url, pool_size=job.threads)
    if job.kind == "product":
        _warm_up(engine)
    users = Users(counter, job.first_user)
    gate = threading.Barrier(job.threads + 1)
    results: list[Outcome] = []
    lock = threading.Lock()
    target = _product_claimer if job.kind == "product" else _baseline_claimer

    def run() -> None:
        result = Outcome()  # filled as it goes: a claimer that fails keeps the claims it made
        try:
            target(job, engine, users, gate, result)
        except BaseException as exc:  # reported with the run's figures
            result.errors.append(f"{type(exc).__name__}: {exc}")
            result.end = time.monotonic()
            if gate.n_waiting:
                gate.abort()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(job.threads)]
    for t in threads:
        t.start()
    ready()
    with contextlib.suppress(threading.BrokenBarrierError):
        gate.wait()
    for t in threads:
        t.join()
    engine.dispose()
    total = Outcome()
    for r in results:
        total.merge(r)
    return total


def _child(job: Job, counter: Any, barrier: Any, queue: Any) -> None:
    try:
        queue.put(run_in_process(job, counter, barrier.wait))
    except BaseException as exc:
        queue.put(Outcome(errors=[f"{type(exc).__name__}: {exc}"]))


def run_phase(job: Job, claimers: int, processes: int) -> Outcome:
    """K claimers of one kind, as threads over `processes` processes; returns their claims."""
    counter = mp.get_context("spawn").Value("q", 0)
    if processes <= 1:
        job.threads = claimers
        return run_in_process(job, counter, lambda: None)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    queue = ctx.Queue()
    share = [
        claimers // processes + (1 if i < claimers % processes else 0) for i in range(processes)
    ]
    procs = []
    for n in share:
        sub = Job(**{**job.__dict__, "threads": n})
        p = ctx.Process(target=_child, args=(sub, counter, barrier, queue))
        p.start()
        procs.append(p)
    total = Outcome()
    for _ in procs:
        total.merge(queue.get())
    for p in procs:
        p.join()
    return total


# A transaction open this long anywhere on the server (any database: xids are the cluster's) keeps
# every row version since its start visible, so the claims' index scans walk every entry taken
# since — both phases slow as the queue drains, whichever is running. The figures are then the
# server's, not the claim's: the bench says so.
HORIZON_HELD_S = 10.0


class LockSampler:
    """PostgreSQL: how many of the bench's connections wait on a lock (pg_stat_activity, every
    50 ms) while a phase runs — what a hot row costs, seen apart from the machine's CPU noise —
    and the oldest transaction open on the whole server that holds back the cleanup of dead
    row versions (another program's, or a forgotten session)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[int, int]] = []  # (waiting on a lock, active)
        self.horizon_held_s = 0.0  # the oldest such transaction seen, in seconds
        self.horizon_holder = ""  # its database and state, for the warning
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            while not self._stop.wait(0.05):  # a sampling period, not a synchronization
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
                    "count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                if row is not None:
                    self.samples.append((int(row[0]), int(row[1])))
                held = conn.execute(
                    "SELECT extract(epoch FROM now() - xact_start), datname, state "
                    "FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                    "AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) "
                    "ORDER BY xact_start LIMIT 1"
                ).fetchone()
                if held is not None and held[0] is not None and held[0] > self.horizon_held_s:
                    self.horizon_held_s = float(held[0])
                    self.horizon_holder = f"{held[1]}, {held[2]}"

    def horizon_warning(self, phase: str) -> str | None:
        if self.horizon_held_s < HORIZON_HELD_S:
            return None
        return (
            f"warning: during the {phase} a transaction stayed open {self.horizon_held_s:.0f} s on "
            f"the server ({self.horizon_holder}): dead row versions could not be cleaned up and "
            "every dequeue walked past them — this phase's figures are the server's, not the claim's"
        )

    def mean_waiting(self) -> float | None:
        if not self.samples:
            return None
        return round(sum(w for w, _ in self.samples) / len(self.samples), 2)


# ---------------------------------------------------------------------------------------------
# Figures


def figures(out: Outcome, unit_claims: int | None = None) -> dict[str, Any]:
    lat = sorted(out.latencies)
    wall = max(out.end - out.start, 1e-9)
    claims = len(out.ids) if unit_claims is None else unit_claims
    return {
        "claims": claims,
        "seconds": round(wall, 3),
        "per_s": round(claims / wall, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 3),
        "p90_ms": round(percentile(lat, 90) * 1000, 3),
        "p99_ms": round(percentile(lat, 99) * 1000, 3),
        "max_ms": round(lat[-1] * 1000, 3) if lat else 0.0,
    }


def double_claims(engine: Engine, out: Outcome, held_status: str) -> dict[str, int]:
    """Duplicates among what claimers were told, plus claims the rows disagree with."""
    told = Counter(out.ids)
    duplicates = sum(n - 1 for n in told.values() if n > 1)
    with engine.connect() as conn:
        held = dict(
            conn.execute(
                select(QueueEntry.patient_id, QueueEntry.holder_id).where(
                    QueueEntry.holder_id.is_not(None), QueueEntry.status == held_status
                )
            ).all()
        )
        left = conn.scalar(
            select(func.count()).select_from(QueueEntry).where(QueueEntry.holder_id.is_(None))
        )
        passed_over = conn.scalar(
            select(func.count())
            .select_from(QueueEntry)
            .where(QueueEntry.blocked_reason.is_not(None))
        )
    disagree = sum(1 for p, u in zip(out.ids, out.users, strict=False) if held.get(p) != u)
    return {
        "duplicates": duplicates,
        "disagree": disagree if duplicates == 0 else 0,
        "unclaimed": int(left or 0),
        "passed_over": int(passed_over or 0),
        "held_rows": len(held),
    }


def pgqueuer_phase(
    url: str, tasks: int, jobs: int, claimers: int, processes: int
) -> dict[str, Any]:
    import importlib.metadata

    import psycopg
    from pgqueuer.queries import Queries

    async def prepare() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
            q = Queries.from_psycopg_connection(conn)
            await q.install()
            rng = random.Random(11)
            done = 0
            while done < tasks:
                n = min(10_000, tasks - done)
                await q.enqueue(
                    [PGQ_ENTRYPOINT] * n, [None] * n, [rng.randrange(1000) for _ in range(n)]
                )
                done += n
            await conn.execute("VACUUM ANALYZE")

    # Both batch sizes dequeue `jobs` jobs from a queue at least N deep when they start.
    tasks = max(tasks, 2 * jobs)
    log(f"pgqueuer: installing and enqueueing {tasks:,} jobs")
    asyncio.run(prepare())
    result: dict[str, Any] = {"version": importlib.metadata.version("pgqueuer"), "jobs": jobs}
    for batch in (1, 10):
        log(f"pgqueuer: {claimers} consumers dequeue {jobs:,} jobs at batch {batch}")
        job = Job("pgqueuer", url, claimers, [], 0, batch=batch, limit=jobs)
        out = run_phase(job, claimers, processes)
        if out.errors:
            raise RuntimeError(f"pgqueuer consumers failed: {out.errors[0]}")
        f = figures(out)
        f["dequeue_p50_ms"], f["dequeue_p99_ms"] = f.pop("p50_ms"), f.pop("p99_ms")
        f["double_dequeues"] = sum(n - 1 for n in Counter(out.ids).values() if n > 1)
        result[f"batch{batch}"] = f
    return result


def _table_row(name: str, f: dict[str, Any], double: int) -> list[Any]:
    return [
        name,
        f"{f['claims']:,}",
        fmt(f["seconds"], 2),
        fmt(f["per_s"]),
        fmt(f["p50_ms"], 2),
        fmt(f["p99_ms"], 2),
        double,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, required=True, metavar="N")
    parser.add_argument("--claimers", type=int, required=True, metavar="K")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="spread the claimers over this many processes (default: 1 on SQLite, 10 on PostgreSQL)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=0.0,
        help="stop each of the floor and claim_next phases after this long and report what it "
        "reached (default: run until every task is claimed)",
    )
    parser.add_argument(
        "--pgqueuer-jobs",
        type=int,
        default=0,
        metavar="M",
        help="pgqueuer dequeues M of the N enqueued jobs per batch size (default: N, at most 100,000)",
    )
    parser.add_argument("--no-pgqueuer", action="store_true", help="skip the pgqueuer phases")
    parser.add_argument(
        "--no-audited-floor",
        action="store_true",
        help="PostgreSQL: skip the floor with the claim's audit row (a third drain of the queue; "
        "SQLite always runs it: its budget is measured against it)",
    )
    parser.add_argument(
        "--audit-chain",
        choices=("on", "off", "one-head"),
        default="on",
        help="off: drop the audit log's seal trigger (migration 0015) in the scratch database "
        "after migrating, so audit rows are written unchained; one-head (PostgreSQL): every "
        "connection seals into chain 1, as before the chains were split — A/B runs only",
    )
    parser.add_argument(
        "--no-compliance",
        action="store_true",
        help="claim without the calling-window admission (admit=None), as in the foundation issue",
    )
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.claimers < 1:
        parser.error("--tasks and --claimers must be at least 1")
    postgres = args.backend == "postgres"
    # Each console is a process of its own; with few processes the claimers' wait for the GIL,
    # not the database, made the tail (4 processes: p99 2.5x the floor's; 8: 1.3x).
    processes = args.processes or (10 if postgres else 1)
    if not postgres and processes != 1:
        parser.error("--processes applies to PostgreSQL (SQLite claimers are threads)")
    server = server_url(args) if postgres else None
    users = args.tasks + args.claimers * (USER_BLOCK + 1) * 2

    with scratch_database(args.backend, server) as url:
        engine = make_engine(url, pool_size=4)
        upgrade(engine)
        if args.audit_chain == "off":
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "DROP TRIGGER audit_events_seal" + (" ON audit_events" if postgres else "")
                )
        elif args.audit_chain == "one-head":
            if not postgres:
                parser.error("--audit-chain one-head applies to PostgreSQL (SQLite has one)")
            with engine.begin() as conn:
                body = conn.exec_driver_sql(
                    "SELECT pg_get_functiondef('audit_events_seal'::regproc)"
                ).scalar_one()
                spread = f"1 + pg_backend_pid() % {POSTGRES_CHAINS}"
                if spread not in body:
                    raise SystemExit("error: audit_events_seal() does not pick a chain by pid")
                conn.exec_driver_sql(body.replace(spread, "1"))
        world = fill(engine, args.tasks, users)
        analyze(engine)
        sync = "" if postgres else sqlite_synchronous(engine)

        admitted, admit_s = 0, 0.0
        if not args.no_compliance:
            # What `outreach queue build` does after building: the claim-time check, done ahead.
            # Before the floor, so that both phases run on rows that carry it.
            log("admission: the calling rules for every queued patient (as queue build does)")
            t0 = time.perf_counter()
            with transaction(session_factory(engine)) as s:
                admitted = admit_entries(s, NOW)
            admit_s = time.perf_counter() - t0
        # Each phase starts from the same compact table: without this the second phase ran on
        # a table the first and the reset between them had rewritten (on PostgreSQL, indexes
        # grown by dead entries), a handicap of whichever phase came second.
        compact(engine)

        log(f"floor: {args.claimers} bare dequeuers over {args.tasks:,} tasks")
        job = Job(
            "baseline", url, 0, world.pharmacy_ids, world.first_user, deadline_s=args.max_seconds
        )
        with contextlib.ExitStack() as stack:
            base_locks = stack.enter_context(LockSampler(url)) if postgres else None
            base = run_phase(job, args.claimers, processes)
        if base.errors:
            raise SystemExit(f"error: bare dequeue failed: {base.errors[0]}")
        base_checks = double_claims(engine, base, "claimed")
        reset_queue(engine)
        compact(engine)

        admission = "off (--no-compliance: admit=None)" if args.no_compliance else admission_state()
        log(
            f"claim_next: {args.claimers} claimers over {args.tasks:,} tasks (admission {admission})"
        )
        job = Job(
            "product",
            url,
            0,
            world.pharmacy_ids,
            world.first_user,
            deadline_s=args.max_seconds,
            no_compliance=args.no_compliance,
        )
        with contextlib.ExitStack() as stack:
            prod_locks = stack.enter_context(LockSampler(url)) if postgres else None
            prod = run_phase(job, args.claimers, processes)
        checks = double_claims(engine, prod, "open")
        with engine.connect() as conn:
            audited = conn.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "claim")
            )
        audited_floor: dict[str, Any] | None = None
        audit_locks: LockSampler | None = None
        if not postgres or not args.no_audited_floor:
            # Last, so the product's claims ran on an audit log as empty as the floor's did;
            # this phase starts with the product's 100,000-odd audit rows already there.
            log(f"audited floor: {args.claimers} bare dequeuers, each claim with its audit row")
            reset_queue(engine)
            compact(engine)
            with engine.begin() as conn:
                for statement in FLOOR_AUDIT_TRIGGER_PG if postgres else (FLOOR_AUDIT_TRIGGER,):
                    conn.exec_driver_sql(statement)
            job = Job(
                "baseline",
                url,
                0,
                world.pharmacy_ids,
                world.first_user,
                deadline_s=args.max_seconds,
            )
            with contextlib.ExitStack() as stack:
                audit_locks = stack.enter_context(LockSampler(url)) if postgres else None
                floor_audited = run_phase(job, args.claimers, processes)
            with engine.begin() as conn:
                for statement in (
                    FLOOR_AUDIT_DROP_PG if postgres else ("DROP TRIGGER bench_floor_audit",)
                ):
                    conn.exec_driver_sql(statement)
            audit_checks = double_claims(engine, floor_audited, "claimed")
            audited_floor = {
                **figures(floor_audited),
                "double_claims": audit_checks["duplicates"] + audit_checks["disagree"],
            }
        pgq: dict[str, Any] | None = None
        if postgres and not args.no_pgqueuer:
            jobs = args.pgqueuer_jobs or min(args.tasks, 100_000)
            pgq = pgqueuer_phase(url, args.tasks, min(jobs, args.tasks), args.claimers, processes)
        engine.dispose()

    p, b = figures(prod), figures(base)
    result: dict[str, Any] = {
        "backend": args.backend,
        "tasks": args.tasks,
        "claimers": args.claimers,
        "processes": processes,
        "sqlite_synchronous": sync or None,
        "compliance_admission": admission,
        "audit_chain": args.audit_chain,
        "lock_waiting_mean": prod_locks.mean_waiting() if prod_locks else None,
        "baseline_lock_waiting_mean": base_locks.mean_waiting() if base_locks else None,
        # The oldest transaction open on the server during each phase (seconds): over
        # HORIZON_HELD_S, that phase's figures are not the claim's (see LockSampler).
        "horizon_held_s": round(prod_locks.horizon_held_s, 1) if prod_locks else None,
        "baseline_horizon_held_s": round(base_locks.horizon_held_s, 1) if base_locks else None,
        "audited_floor_horizon_held_s": (
            round(audit_locks.horizon_held_s, 1) if audit_locks else None
        ),
        "finished": not prod.stopped_early and checks["unclaimed"] == checks["passed_over"],
        "claims": p["claims"],
        "seconds": p["seconds"],
        "claims_per_s": p["per_s"],
        "p50_ms": p["p50_ms"],
        "p90_ms": p["p90_ms"],
        "p99_ms": p["p99_ms"],
        "max_ms": p["max_ms"],
        "double_claims": checks["duplicates"] + checks["disagree"],
        "unclaimed": checks["unclaimed"],
        "passed_over": checks["passed_over"],
        "audited_claims": int(audited or 0),
        "admission_precompute_s": round(admit_s, 3),
        "admitted_ahead": admitted,
        "one_statement_claims": prod.one_statement,
        "full_claims": prod.full_claims,
        "errors": prod.errors[:3],
        "baseline_finished": not base.stopped_early,
        "baseline_claims": b["claims"],
        "baseline_seconds": b["seconds"],
        "baseline_claims_per_s": b["per_s"],
        "baseline_p50_ms": b["p50_ms"],
        "baseline_p90_ms": b["p90_ms"],
        "baseline_p99_ms": b["p99_ms"],
        "baseline_max_ms": b["max_ms"],
        "baseline_double_claims": base_checks["duplicates"] + base_checks["disagree"],
        "ratio_vs_baseline": ratio(p["per_s"], b["per_s"]),
        "p99_ratio_vs_baseline": ratio(p["p99_ms"], b["p99_ms"]),
    }
    if audited_floor is not None:
        af = audited_floor
        result["audited_floor"] = af
        result["audited_floor_claims_per_s"] = af["per_s"]
        result["audited_floor_p99_ms"] = af["p99_ms"]
        result["ratio_audited_floor_vs_baseline"] = ratio(af["per_s"], b["per_s"])
        result["p99_ratio_audited_floor_vs_baseline"] = ratio(af["p99_ms"], b["p99_ms"])
        result["ratio_vs_audited_floor"] = ratio(p["per_s"], af["per_s"])
        result["p99_ratio_vs_audited_floor"] = ratio(p["p99_ms"], af["p99_ms"])
    if pgq is not None:
        result["pgqueuer"] = pgq
        result["pgqueuer_batch1_per_s"] = pgq["batch1"]["per_s"]
        result["pgqueuer_batch10_per_s"] = pgq["batch10"]["per_s"]
        result["ratio_vs_pgqueuer_batch1"] = ratio(p["per_s"], pgq["batch1"]["per_s"])
        result["ratio_vs_pgqueuer_batch10"] = ratio(p["per_s"], pgq["batch10"]["per_s"])

    rows: list[list[Any]] = [
        _table_row("claim_next", p, result["double_claims"]),
        _table_row(
            "bare UPDATE…RETURNING" if not postgres else "bare SKIP LOCKED",
            b,
            result["baseline_double_claims"],
        ),
    ]
    if audited_floor is not None:
        rows.append(_table_row("bare + audit row", audited_floor, audited_floor["double_claims"]))
    if pgq is not None:
        for batch in (1, 10):
            f = pgq[f"batch{batch}"]
            rows.append(
                _table_row(
                    f"pgqueuer {pgq['version']} batch {batch}",
                    {**f, "p50_ms": f["dequeue_p50_ms"], "p99_ms": f["dequeue_p99_ms"]},
                    f["double_dequeues"],
                )
            )
    setting = f", synchronous={sync}" if sync else f", {processes} process(es)"
    print_table(
        f"claim next patient — {args.backend}, {args.tasks:,} tasks, "
        f"{args.claimers} claimers{setting}",
        ("dequeue", "claims", "seconds", "claims/s", "p50 ms", "p99 ms", "double"),
        rows,
    )
    print(f"compliance admission: {admission}")
    print(f"audit chain: {args.audit_chain}")
    if prod_locks and base_locks:
        print(
            "connections waiting on a lock (mean of 50 ms samples): "
            f"claim_next {fmt(result['lock_waiting_mean'], 2)}, "
            f"floor {fmt(result['baseline_lock_waiting_mean'], 2)}"
        )
    samplers = (
        (base_locks, "floor"),
        (prod_locks, "claim_next phase"),
        (audit_locks, "audited floor"),
    )
    for sampler, phase in samplers:
        warning = sampler.horizon_warning(phase) if sampler else None
        if warning:
            print(warning)
    if not args.no_compliance:
        print(
            f"admission done ahead (as queue build does): {admitted:,} patients in "
            f"{fmt(admit_s, 2)} s, not timed in the claims; claims in one statement "
            f"{prod.one_statement:,}, through the full claim {prod.full_claims:,}"
        )
    # DESIGN.md's budgets: PostgreSQL against this floor; SQLite against the audited one (below).
    budgets = (" (budget >= 1.0)", " (budget <= 1.2)") if postgres else ("", "")
    print(
        f"claim_next vs floor: throughput {fmt(result['ratio_vs_baseline'], 3)}x{budgets[0]}, "
        f"p99 {fmt(result['p99_ratio_vs_baseline'], 3)}x{budgets[1]}; "
        f"unclaimed {result['unclaimed']}, passed over by admission {result['passed_over']}, "
        f"finished {result['finished']}"
    )
    if audited_floor is not None:
        print(
            "bare + audit row vs floor (the audit log's own share of the budget): throughput "
            f"{fmt(result['ratio_audited_floor_vs_baseline'], 3)}x, "
            f"p99 {fmt(result['p99_ratio_audited_floor_vs_baseline'], 3)}x; "
            f"claim_next vs bare + audit row: throughput "
            f"{fmt(result['ratio_vs_audited_floor'], 3)}x{'' if postgres else ' (budget >= 0.67)'}, "
            f"p99 {fmt(result['p99_ratio_vs_audited_floor'], 3)}x{'' if postgres else ' (budget <= 1.5)'}"
        )
    if pgq is not None:
        print(
            f"claim_next vs pgqueuer: {fmt(result['ratio_vs_pgqueuer_batch1'], 3)}x batch 1, "
            f"{fmt(result['ratio_vs_pgqueuer_batch10'], 3)}x batch 10 (budget >= 1 at batch 10)"
        )
    if prod.errors:
        print(f"errors: {prod.errors[0]}", file=sys.stderr)
    if args.json:
        emit_json(result)
    clean = result["double_claims"] == 0 and not (audited_floor or {}).get("double_claims")
    return 0 if clean and not prod.errors else 1


if __name__ == "__main__":
    sys.exit(main())
