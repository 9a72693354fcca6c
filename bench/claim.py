"""Claim next patient under load: queues.claims.claiming.claim_next against a bare dequeue floor.

    bench/claim.py --backend sqlite|postgres --tasks N --claimers K [--rounds R] [--json]

Fills a fresh database with N open tasks (one per patient, over three pharmacies in three time
zones, every patient callable at the benchmark's clock, the calling rules checked ahead on every
row), then K concurrent claimers drain that one queue, the sides taking turns in R rounds (each
turn a slice of N / (R x sides) claims; floor, claim, audited floor, then the other way round):

- floor: a bare dequeue — PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED LIMIT 1` + `UPDATE` in one
  transaction, SQLite one `UPDATE … RETURNING`;
- product: `claim_next` exactly as the console calls it (queues.claims.fast_claimer.Claimer), each
  claim by a console that holds nobody yet (as in tests/queues/test_claiming.py);
- audited floor: the floor's dequeue plus the audit row every claim must write (the same INSERT
  the product's claim trigger makes, sealed into the audit chain alike) — SQLite's budget is
  against it; on PostgreSQL it shows how much of the claim's tail the audit log takes;
- PostgreSQL only, afterwards: pgqueuer's dequeue of the same number of jobs on the same database,
  at batch 1 and batch 10.

Taking turns on one queue, every side sees the queue at every depth and the machine's load swings
land on all of them alike; the per-round ratios show the spread. Claimers are threads, each with
its own connections, kept for the whole run; on PostgreSQL they are spread over several processes
(`--processes`), since claim_next's Python work holds the GIL. Double claims are counted from what
each claimer was told and checked against the rows afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import multiprocessing as mp
import os
import random
import struct
import sys
import threading
import time
import uuid
from array import array
from collections import Counter
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
from sqlalchemy import Engine, func, select, text

from queues.claims import admission_ahead, claiming
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
# is spelled out so that both planners use the index, as a bare dequeue on this schema would. The
# audited floor is the same dequeue marking its rows 'audited' (not 'claimed'): its trigger, below,
# writes the audit row for those only, so both floors run on one queue beside the claim.
CLAIMABLE = "status = 'open' AND claimed_at IS NULL AND blocked_reason IS NULL"
_PG_PICK = (
    f"SELECT patient_id FROM queue_entries WHERE {CLAIMABLE} "
    "ORDER BY sort_key, patient_id LIMIT 1 FOR UPDATE SKIP LOCKED"
)
_LITE_TAKE = (
    "UPDATE queue_entries SET status = '{status}', holder_id = ? WHERE patient_id = "
    f"(SELECT patient_id FROM queue_entries WHERE {CLAIMABLE} "
    "ORDER BY sort_key, patient_id LIMIT 1) RETURNING patient_id"
)
FLOOR_STATUS = {"baseline": "claimed", "audited": "audited"}
FLOOR_SQL = {  # dialect -> side -> (pick, mark); SQLite's is one statement
    "postgresql": {
        side: (
            _PG_PICK,
            f"UPDATE queue_entries SET status = '{status}', holder_id = %s WHERE patient_id = %s",
        )
        for side, status in FLOOR_STATUS.items()
    },
    "sqlite": {
        side: (_LITE_TAKE.format(status=status), "") for side, status in FLOOR_STATUS.items()
    },
}

# The audited floor: the bare dequeue plus the claim's audit row, written as the claim's own
# trigger writes it on SQLite (migration 0009), so that the two differ only in the lease's
# bookkeeping. The audit log's seal (migration 0015, AFTER INSERT ON audit_events) chains this row
# as it chains the claim's: the floor pays for the hash chain too (unless --audit-chain off drops
# the seal). The bare floor's UPDATE passes this trigger's WHEN (one comparison a row).
FLOOR_AUDIT_TRIGGER = (
    "CREATE TRIGGER bench_floor_audit AFTER UPDATE OF status ON queue_entries "
    "WHEN NEW.status = 'audited' AND OLD.status = 'open' BEGIN "
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
    "WHEN (NEW.status = 'audited' AND OLD.status = 'open') EXECUTE FUNCTION bench_floor_audit()",
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
#
# The sides (the floor, the claim, the audited floor) take turns on one queue: round r runs each
# side for a slice of the tasks, floor - claim - audited floor, then the other way round, so that
# the claim always runs between the two floors and a swing of the machine's load lands on every
# side alike. Each claimer thread keeps its connections for the whole run (one per side), and
# each process its threads' connections: only the claims are timed, never a connect or a spawn.

SIDES = ("baseline", "product", "audited")
SIDE_NAMES = {"baseline": "floor", "product": "claim_next", "audited": "audited floor"}


@dataclass
class Job:
    kind: str  # rounds (the three sides) | pgqueuer
    url: str
    threads: int
    pharmacy_ids: list[int]
    first_user: int
    batch: int = 1
    limit: int = 0  # pgqueuer: stop after this many jobs
    no_compliance: bool = False  # claim_next(admit=None): the foundation's claim, no window checks
    tail_causes: str = ""  # SQLite: note what each claim went through (TailProbe): full | light
    checkpointer: str = "off"  # SQLite experiment: off | claim | all (BackgroundCheckpointer)


@dataclass(frozen=True)
class Turn:
    """One side's share of a round, for one process."""

    side: str  # baseline | product | audited
    quota: int  # claims this process makes at most
    deadline_s: float  # stop after this long (0: the quota or an empty queue)


@dataclass
class Outcome:
    ids: array[int] = field(default_factory=lambda: array("q"))
    users: array[int] = field(default_factory=lambda: array("q"))
    latencies: array[float] = field(default_factory=lambda: array("d"))
    start: float = float("inf")
    end: float = 0.0
    errors: list[str] = field(default_factory=list)
    stopped_early: bool = False
    emptied: bool = False  # a claimer found nothing left to claim
    one_statement: int = 0  # claims the Claimer made in one statement
    full_claims: int = 0  # and through claim_next (the head needed the full check, or none left)
    notes: list[tuple[Any, ...]] = field(default_factory=list)  # TailProbe's, one a timed claim

    def merge(self, other: Outcome) -> None:
        self.notes.extend(other.notes)
        self.one_statement += other.one_statement
        self.full_claims += other.full_claims
        self.ids.extend(other.ids)
        self.users.extend(other.users)
        self.latencies.extend(other.latencies)
        self.start = min(self.start, other.start)
        self.end = max(self.end, other.end)
        self.errors.extend(other.errors)
        self.stopped_early = self.stopped_early or other.stopped_early
        self.emptied = self.emptied or other.emptied


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


class Tickets:
    """A process's quota of claims for one turn, shared by its threads."""

    def __init__(self, quota: int) -> None:
        self.left = quota
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


# ---------------------------------------------------------------------------------------------
# What each claim went through (--tail-causes, SQLite): read around each timed claim, outside
# its clock, so the latencies are the same claims' as without it (the turns' seconds include the
# reads, ~20 us a claim, alike on every side).

# The WAL index (the -shm file SQLite maps shared): its header's mxFrame (frames in the WAL) and
# salt (new at each restart of the WAL), and the checkpoint's nBackfill (frames copied back):
# https://www.sqlite.org/walformat.html ("The WAL-Index Header"). Native byte order.
_SHM_MXFRAME, _SHM_SALT, _SHM_BACKFILL = 16, 32, 96
# A claim's own commit writes ~14 WAL frames (two write calls each); a checkpoint writes every
# page it copies back to the database file: more than this many write calls is a checkpoint.
_OWN_CHECKPOINT_WRITES = 80
_ahead_spent = threading.local()


class TailProbe:
    """Per claimer thread: its /proc/thread-self counters (write calls, CPU and run-queue time,
    voluntary and forced context switches) and the WAL index, read before and after a claim."""

    def __init__(self, db_path: str, light: bool = False) -> None:
        self.db_path = db_path
        # light: the WAL index only (a read of shared memory; no system call, the GIL kept),
        # so that the claims' interleaving is as without the probe; no thread counters.
        self.light = light
        self._shm: mmap.mmap | None = None
        self._fds = threading.local()

    def _wal(self) -> tuple[int, bytes, int]:
        if self._shm is None:
            with open(self.db_path + "-shm", "rb") as f:
                self._shm = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED, mmap.PROT_READ)
        shm = self._shm
        return (
            struct.unpack_from("I", shm, _SHM_MXFRAME)[0],
            shm[_SHM_SALT : _SHM_SALT + 8],
            struct.unpack_from("I", shm, _SHM_BACKFILL)[0],
        )

    def _thread(self) -> tuple[int, int, int, int, int]:
        if self.light:
            return -1, 0, 0, 0, 0
        fds = getattr(self._fds, "fds", None)
        if fds is None:
            fds = self._fds.fds = [
                os.open(f"/proc/thread-self/{name}", os.O_RDONLY)
                for name in ("io", "schedstat", "status")
            ]
        io, sched, status = (os.pread(fd, 4096, 0).decode() for fd in fds)
        writes = int(io.split("syscw:")[1].split()[0])
        cpu, runq = (int(x) for x in sched.split()[:2])
        vol = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        forced = int(status.split("nonvoluntary_ctxt_switches:")[1].split()[0])
        return writes, cpu, runq, vol, forced

    def before(self) -> tuple[Any, ...]:
        _ahead_spent.s = 0.0
        return (*self._thread(), *self._wal())

    def after(self, was: tuple[Any, ...], side: str, latency: float, full: bool) -> tuple[Any, ...]:
        now = (*self._thread(), *self._wal())
        d = [b - a for a, b in zip(was[:5], now[:5], strict=True)]
        if self.light:
            d[0] = -1  # write calls not read
        # A checkpoint ended during the claim: more frames copied back (nBackfill) in the same
        # WAL, or copied back in a WAL restarted meanwhile (a new salt; the restart alone, at the
        # next write after a checkpoint that emptied the WAL, sets nBackfill to 0).
        checkpoint = now[7] > was[7] if now[6] == was[6] else now[7] > 0
        return (
            side,
            latency,
            full,
            getattr(_ahead_spent, "s", 0.0),
            checkpoint,
            d[0],  # write calls
            d[1] / 1e9,  # on a CPU
            d[2] / 1e9,  # runnable, waiting for a CPU
            d[3],  # voluntary switches (sleeps: busy handler, GIL, I/O)
            d[4],  # forced switches
            now[5],  # frames in the WAL after
        )

    def close(self) -> None:
        if self._shm is not None:
            self._shm.close()


def _timing_admission_ahead() -> None:
    """Note, per thread, the time a claim spends in ADMIT_AHEAD.after_full_claim (the bench's
    own wrapper on the process's one instance; the product is unchanged)."""
    ahead = admission_ahead.ADMIT_AHEAD
    if getattr(ahead, "_bench_timed", False):
        return
    real = ahead.after_full_claim

    def timed(*args: Any, **kwargs: Any) -> None:
        t0 = time.perf_counter()
        try:
            real(*args, **kwargs)
        finally:
            _ahead_spent.s = getattr(_ahead_spent, "s", 0.0) + time.perf_counter() - t0

    ahead.after_full_claim = timed  # type: ignore[method-assign]
    ahead._bench_timed = True  # type: ignore[attr-defined]


CAUSES = (
    "admission ahead inside the call",
    "full claim (the compliance check)",
    "its own commit checkpointed the WAL",
    "a checkpoint ran meanwhile (another's)",
    "waited for a CPU >= half the time",
    "off CPU >= 1 ms (busy-handler sleeps, GIL, I/O)",
    "other",
    "light: a checkpoint ran during it (its own or another's)",
    "light: no checkpoint, 1 ms or more (busy-handler sleeps, GIL)",
)


def cause_of(note: tuple[Any, ...]) -> str:
    _side, latency, full, ahead, ckpt, writes, cpu, runq, _vol, _forced, _frames = note
    if ahead > 0:
        return CAUSES[0]
    if full:
        return CAUSES[1]
    if writes < 0:  # --tail-causes light: no thread counters
        return CAUSES[7] if ckpt else CAUSES[8] if latency >= 0.001 else CAUSES[6]
    if ckpt and writes > _OWN_CHECKPOINT_WRITES:
        return CAUSES[2]
    if ckpt:
        return CAUSES[3]
    if runq >= latency / 2:
        return CAUSES[4]
    if latency - cpu - runq >= 0.001:  # a busy-handler sleep is 1 ms or more
        return CAUSES[5]
    return CAUSES[6]


def tail_table(notes: list[tuple[Any, ...]], sides: list[str]) -> dict[str, Any]:
    """For each side: its slowest 1% by cause (count, mean ms), and the share of every claim that
    met each cause; with the means of the slowest 1%'s counters."""
    out: dict[str, Any] = {}
    for side in sides:
        mine = sorted((n for n in notes if n[0] == side), key=lambda n: n[1])
        if not mine:
            continue
        slow = mine[-max(1, len(mine) // 100) :]
        by: dict[str, list[float]] = {}
        for n in slow:
            by.setdefault(cause_of(n), []).append(n[1])
        every = Counter(cause_of(n) for n in mine)
        k = len(slow)
        out[side] = {
            "claims": len(mine),
            "slowest": k,
            "slowest_from_ms": round(slow[0][1] * 1000, 2),
            "causes": {
                c: {
                    "slowest": len(by.get(c, ())),
                    "slowest_mean_ms": round(1000 * sum(by[c]) / len(by[c]), 2)
                    if c in by
                    else None,
                    "all_claims": every.get(c, 0),
                }
                for c in CAUSES
            },
            "slowest_mean": {
                "cpu_ms": round(1000 * sum(n[6] for n in slow) / k, 2),
                "runq_ms": round(1000 * sum(n[7] for n in slow) / k, 2),
                "off_cpu_ms": round(1000 * sum(n[1] - n[6] - n[7] for n in slow) / k, 2),
                "voluntary_switches": round(sum(n[8] for n in slow) / k, 2),
                "write_calls": round(sum(n[5] for n in slow) / k, 1),
            },
            "all_mean": {
                "voluntary_switches": round(sum(n[8] for n in mine) / len(mine), 2),
                "write_calls": round(sum(n[5] for n in mine) / len(mine), 1),
                "checkpoint_seen": round(sum(1 for n in mine if n[4]) / len(mine), 4),
            },
        }
    return out


class BackgroundCheckpointer:
    """An experiment (--checkpointer, SQLite): a thread that copies the WAL back into the database
    (PRAGMA wal_checkpoint(PASSIVE): it never waits for a reader or a writer) once it holds
    CHECKPOINT_PAGES frames not yet copied - what the commit crossing 1,000 pages does inline when
    its connection's wal_autocheckpoint is on. It looks every LOOK_S (a polling period)."""

    CHECKPOINT_PAGES = 1_000
    LOOK_S = 0.002

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        self.conn: Any = self.raw.driver_connection
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self.path = str(engine.url.database)
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with open(self.path + "-shm", "rb") as f:
            shm = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED, mmap.PROT_READ)
        try:
            while not self._stop.wait(self.LOOK_S):
                frames = struct.unpack_from("I", shm, _SHM_MXFRAME)[0]
                copied = struct.unpack_from("I", shm, _SHM_BACKFILL)[0]
                if frames - copied >= self.CHECKPOINT_PAGES:
                    self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
        finally:
            shm.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.raw.close()


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


class Seat:
    """One claimer thread's connections, kept for the whole run: the console's Claimer (its own
    connection, as console.shift claims) and the floors' bare connection."""

    def __init__(self, job: Job, engine: Engine, floor_engine: Engine) -> None:
        self.job = job
        self.sessions = session_factory(engine)
        with self.sessions() as warm:  # open the session pool's connection before any clock
            warm.execute(text("SELECT 1"))
        self.claimer = Claimer(engine, self.sessions)
        self.claimer.open()
        self.postgres = is_postgres(engine)
        if self.postgres:
            import psycopg

            self.pg: Any = psycopg.connect(libpq_url(job.url), autocommit=True)
        else:
            # The product's pragmas (WAL, synchronous, busy_timeout), from a pool of its own.
            self.raw = floor_engine.raw_connection()
            self.lite: Any = self.raw.driver_connection
            # The experiment: the WAL copied back by a thread of the process instead of by the
            # commit that crosses 1,000 pages - the claim's connection, or every side's.
            if job.checkpointer in ("claim", "all"):
                claims: Any = self.claimer._connection()
                claims.execute("PRAGMA wal_autocheckpoint=0")
            if job.checkpointer == "all":
                self.lite.execute("PRAGMA wal_autocheckpoint=0")

    def claim(self, side: str, user: int) -> int | None:
        """One claim of the side, as timed: the patient taken, or None when none is left."""
        if side == "product":
            if self.job.no_compliance:
                with transaction(self.sessions) as s:
                    got = claiming.claim_next(
                        s,
                        user_id=user,
                        pharmacy_ids=self.job.pharmacy_ids,
                        now=NOW,
                        lease_seconds=LEASE,
                        admit=None,
                    )
            else:
                got = self.claimer.next(
                    user_id=user, pharmacy_ids=self.job.pharmacy_ids, now=NOW, lease_seconds=LEASE
                )
            if got is None:
                return None
            if got.resumed:
                raise RuntimeError(f"user {user} was handed a patient it already held")
            return got.patient_id
        if self.postgres:
            pick, mark = FLOOR_SQL["postgresql"][side]
            with self.pg.transaction():
                row = self.pg.execute(pick).fetchone()
                if row is not None:
                    self.pg.execute(mark, (user, row[0]))
            return None if row is None else int(row[0])
        rows = self.lite.execute(FLOOR_SQL["sqlite"][side][0], (user,)).fetchall()
        return int(rows[0][0]) if rows else None  # autocommit: one statement

    def close(self) -> None:
        self.claimer.close()
        if self.postgres:
            self.pg.close()
        else:
            self.raw.close()


class Crew:
    """A process's claimer threads and their seats; runs one turn at a time."""

    def __init__(self, job: Job, counter: Any) -> None:
        self.job = job
        self.engine = make_engine(job.url, pool_size=job.threads)
        self.floor_engine = make_engine(job.url, pool_size=job.threads)
        _warm_up(self.engine)
        self.users = Users(counter, job.first_user)
        self.seats = [Seat(job, self.engine, self.floor_engine) for _ in range(job.threads)]
        self.checkpointer: BackgroundCheckpointer | None = None
        if job.checkpointer != "off" and not is_postgres(self.engine):
            self.checkpointer = BackgroundCheckpointer(self.floor_engine)
        self.probe: TailProbe | None = None
        if job.tail_causes and not is_postgres(self.engine):
            _timing_admission_ahead()
            self.probe = TailProbe(str(self.engine.url.database), job.tail_causes == "light")

    def run(self, turn: Turn) -> Outcome:
        tickets = Tickets(turn.quota)
        gate = threading.Barrier(len(self.seats))
        results: list[Outcome] = []
        lock = threading.Lock()

        def run(seat: Seat) -> None:
            out = Outcome()  # filled as it goes: a claimer that fails keeps the claims it made
            try:
                self._claims(seat, turn, tickets, gate, out)
            except BaseException as exc:  # reported with the run's figures
                out.errors.append(f"{type(exc).__name__}: {exc}")
                out.end = time.monotonic()
                gate.abort()
            with lock:
                results.append(out)

        threads = [threading.Thread(target=run, args=(seat,)) for seat in self.seats]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = Outcome()
        for r in results:
            total.merge(r)
        return total

    def _claims(
        self, seat: Seat, turn: Turn, tickets: Tickets, gate: threading.Barrier, out: Outcome
    ) -> None:
        clock = time.perf_counter
        fast, full = seat.claimer.fast, seat.claimer.full
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            return  # another thread failed before the clock started: its error is reported
        out.start = time.monotonic()
        deadline = out.start + turn.deadline_s if turn.deadline_s else 0.0
        try:
            probe = self.probe
            while tickets.take():
                user = self.users.take()
                if probe is not None:
                    was, full_was = probe.before(), seat.claimer.full
                t0 = clock()
                got = seat.claim(turn.side, user)
                t1 = clock()
                if got is None:
                    out.emptied = True
                    break
                if probe is not None:
                    full = seat.claimer.full != full_was
                    out.notes.append(probe.after(was, turn.side, t1 - t0, full))
                out.ids.append(got)
                out.users.append(user)
                out.latencies.append(t1 - t0)
                if deadline and time.monotonic() > deadline:
                    out.stopped_early = True
                    break
        finally:  # a claimer that fails keeps its one-statement/full counts
            out.end = time.monotonic()
            out.one_statement = seat.claimer.fast - fast
            out.full_claims = seat.claimer.full - full

    def close(self) -> None:
        for seat in self.seats:
            seat.close()
        if self.probe is not None:
            self.probe.close()
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()
        self.floor_engine.dispose()


def _crew_process(job: Job, counter: Any, start: Any, turns: Any, results: Any) -> None:
    """A child process: its crew runs each turn it is sent once every process is ready."""
    crew: Crew | None = None
    failed = ""
    try:
        crew = Crew(job, counter)
    except BaseException as exc:  # reported at every turn: the parent is told, not left waiting
        failed = f"{type(exc).__name__}: {exc}"
    try:
        while (turn := turns.get()) is not None:
            start.wait()
            results.put(crew.run(turn) if crew is not None else Outcome(errors=[failed]))
    finally:
        if crew is not None:
            crew.close()


class Claimers:
    """K claimers as threads over `processes` processes, kept for the whole run."""

    def __init__(self, job: Job, claimers: int, processes: int) -> None:
        self.counter = mp.get_context("spawn").Value("q", 0)
        self.local: Crew | None = None
        self.procs: list[Any] = []
        if processes <= 1:
            self.share = [claimers]
            self.local = Crew(Job(**{**job.__dict__, "threads": claimers}), self.counter)
            return
        ctx = mp.get_context("spawn")
        self.share = [
            claimers // processes + (1 if i < claimers % processes else 0) for i in range(processes)
        ]
        self.share = [n for n in self.share if n]
        self.start = ctx.Barrier(len(self.share) + 1)
        self.results = ctx.Queue()
        self.turns = [ctx.Queue() for _ in self.share]
        for n, turns in zip(self.share, self.turns, strict=True):
            sub = Job(**{**job.__dict__, "threads": n})
            p = ctx.Process(
                target=_crew_process, args=(sub, self.counter, self.start, turns, self.results)
            )
            p.start()
            self.procs.append(p)

    def run(self, side: str, claims: int, deadline_s: float) -> Outcome:
        """One turn: the side's claimers make `claims` claims (fewer if the queue empties)."""
        total_threads = sum(self.share)
        quotas = [claims * n // total_threads for n in self.share]
        quotas[0] += claims - sum(quotas)
        if self.local is not None:
            return self.local.run(Turn(side, quotas[0], deadline_s))
        for q, turns in zip(quotas, self.turns, strict=True):
            turns.put(Turn(side, q, deadline_s))
        self.start.wait()
        total = Outcome()
        for _ in self.procs:
            total.merge(self.results.get())
        return total

    def close(self) -> None:
        if self.local is not None:
            self.local.close()
            return
        for turns in self.turns:
            turns.put(None)
        for p in self.procs:
            p.join()


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


def _pgqueuer_child(job: Job, counter: Any, barrier: Any, queue: Any) -> None:
    try:
        queue.put(asyncio.run(_pgqueuer_consumers(job, counter, barrier.wait)))
    except BaseException as exc:
        queue.put(Outcome(errors=[f"{type(exc).__name__}: {exc}"]))


def run_pgqueuer(job: Job, claimers: int, processes: int) -> Outcome:
    """K pgqueuer consumers over `processes` processes; returns their dequeues."""
    counter = mp.get_context("spawn").Value("q", 0)
    if processes <= 1:
        job.threads = claimers
        return asyncio.run(_pgqueuer_consumers(job, counter, lambda: None))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    queue = ctx.Queue()
    share = [
        claimers // processes + (1 if i < claimers % processes else 0) for i in range(processes)
    ]
    procs = []
    for n in share:
        sub = Job(**{**job.__dict__, "threads": n})
        p = ctx.Process(target=_pgqueuer_child, args=(sub, counter, barrier, queue))
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
# since — every side slows as the queue drains, whichever is running. The figures are then the
# server's, not the claim's: the bench says so.
HORIZON_HELD_S = 10.0


class LockSampler:
    """PostgreSQL: how many of the bench's connections wait on a lock (pg_stat_activity, every
    50 ms) while each side runs — what a hot row costs, seen apart from the machine's CPU noise —
    and the oldest transaction open on the whole server that holds back the cleanup of dead
    row versions (another program's, or a forgotten session)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.side = ""  # the side running now (set between turns); "" samples nothing
        self.samples: dict[str, list[tuple[int, int]]] = {}  # side -> (waiting on a lock, active)
        self.held: dict[str, tuple[float, str]] = {}  # side -> oldest such transaction, holder
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
                side = self.side
                if not side:
                    continue
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
                    "count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                if row is not None:
                    self.samples.setdefault(side, []).append((int(row[0]), int(row[1])))
                held = conn.execute(
                    "SELECT extract(epoch FROM now() - xact_start), datname, state "
                    "FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                    "AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) "
                    "ORDER BY xact_start LIMIT 1"
                ).fetchone()
                oldest = self.held.get(side, (0.0, ""))[0]
                if held is not None and held[0] is not None and float(held[0]) > oldest:
                    self.held[side] = (float(held[0]), f"{held[1]}, {held[2]}")

    def horizon_held_s(self, side: str) -> float:
        return round(self.held.get(side, (0.0, ""))[0], 1)

    def horizon_warning(self, side: str) -> str | None:
        seconds, holder = self.held.get(side, (0.0, ""))
        if seconds < HORIZON_HELD_S:
            return None
        return (
            f"warning: during the {SIDE_NAMES[side]}'s turns a transaction stayed open "
            f"{seconds:.0f} s on the server ({holder}): dead row versions could not be cleaned up "
            "and every dequeue walked past them — those figures are the server's, not the claim's"
        )

    def mean_waiting(self, side: str) -> float | None:
        samples = self.samples.get(side)
        if not samples:
            return None
        return round(sum(w for w, _ in samples) / len(samples), 2)


# ---------------------------------------------------------------------------------------------
# Figures


def figures(out: Outcome, seconds: float | None = None) -> dict[str, Any]:
    """Claims, wall time (the turns' own, summed, when given), rate and latency percentiles."""
    lat = sorted(out.latencies)
    wall = max(out.end - out.start if seconds is None else seconds, 1e-9)
    claims = len(out.ids)
    return {
        "claims": claims,
        "seconds": round(wall, 3),
        "per_s": round(claims / wall, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 3),
        "p90_ms": round(percentile(lat, 90) * 1000, 3),
        "p99_ms": round(percentile(lat, 99) * 1000, 3),
        "max_ms": round(lat[-1] * 1000, 3) if lat else 0.0,
    }


def double_claims(engine: Engine, sides: dict[str, Outcome]) -> dict[str, Any]:
    """Per side: claims of a patient someone else (any side) was told too, and claims the rows
    disagree with (another holder, or the other side's status); and what was left unclaimed."""
    told = Counter(p for out in sides.values() for p in out.ids)
    with engine.connect() as conn:
        held = {
            int(p): (u, str(s))
            for p, u, s in conn.execute(
                select(QueueEntry.patient_id, QueueEntry.holder_id, QueueEntry.status).where(
                    QueueEntry.holder_id.is_not(None)
                )
            ).all()
        }
        left = conn.scalar(
            select(func.count()).select_from(QueueEntry).where(QueueEntry.holder_id.is_(None))
        )
        passed_over = conn.scalar(
            select(func.count())
            .select_from(QueueEntry)
            .where(QueueEntry.blocked_reason.is_not(None))
        )
    result: dict[str, Any] = {"unclaimed": int(left or 0), "passed_over": int(passed_over or 0)}
    for side, out in sides.items():
        status = FLOOR_STATUS.get(side, "open")
        duplicates = sum(1 for p in out.ids if told[p] > 1)
        disagree = sum(
            1 for p, u in zip(out.ids, out.users, strict=True) if held.get(p) != (u, status)
        )
        result[side] = duplicates + (disagree if duplicates == 0 else 0)
    return result


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
        out = run_pgqueuer(job, claimers, processes)
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


def _round_ratios(
    detail: list[dict[str, Any]], side: str, floor: str, key: str
) -> list[float | None]:
    """Per round: the side's figure over the floor's, both measured in that round."""
    by = {(d["round"], d["side"]): d for d in detail}
    rounds = sorted({d["round"] for d in detail})
    return [
        ratio(by[(r, side)][key], by[(r, floor)][key])
        for r in rounds
        if (r, side) in by
        and (r, floor) in by
        and by[(r, side)]["claims"]
        and by[(r, floor)]["claims"]
    ]


def _spread(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{min(known):.3f}-{max(known):.3f}" if known else "-"


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, required=True, metavar="N")
    parser.add_argument("--claimers", type=int, required=True, metavar="K")
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        metavar="R",
        help="the sides take turns on the queue R times each, a slice of N / (R x sides) claims "
        "a turn (default 10)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="spread the claimers over this many processes (default: 1 on SQLite, 10 on "
        "PostgreSQL; on SQLite more than 1 is an experiment: no GIL shared between consoles)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=0.0,
        help="stop each side after about this long in all (each turn after S / R seconds) and "
        "report what it reached (default: run until every task is claimed)",
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
        help="PostgreSQL: no turns for the floor with the claim's audit row (SQLite always runs "
        "it: its budget is measured against it)",
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
    parser.add_argument(
        "--tail-causes",
        nargs="?",
        const="full",
        default="",
        choices=("full", "light"),
        help="SQLite: note what each claim went through (its full check, admission ahead, a WAL "
        "checkpoint, CPU and sleep time) and print each side's slowest 1%% by cause; light: "
        "only whether a checkpoint ran (no system calls between claims)",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.0,
        metavar="S",
        help="an experiment: sys.setswitchinterval(S) for the claimer threads (Python's default "
        "0.005)",
    )
    parser.add_argument(
        "--checkpointer",
        choices=("off", "claim", "all"),
        default="off",
        help="SQLite experiment: a background thread checkpoints the WAL past 1,000 pages; "
        "claim: the claim's connections skip the inline checkpoint (the floors keep it); all: "
        "every side's do (the floors given the same treatment)",
    )
    args = parser.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.tasks < 1 or args.claimers < 1:
        parser.error("--tasks and --claimers must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    postgres = args.backend == "postgres"
    # Each console is a process of its own; with few processes the claimers' wait for the GIL,
    # not the database, made the tail (4 processes: p99 2.5x the floor's; 8: 1.3x).
    processes = args.processes or (10 if postgres else 1)
    # SQLite's claimers are threads of one process by default (the budget's figures); more
    # processes is an experiment: consoles are processes of their own, with no GIL between them.
    server = server_url(args) if postgres else None
    sides = ["baseline", "product"] + ([] if postgres and args.no_audited_floor else ["audited"])
    slice_ = -(-args.tasks // (args.rounds * len(sides)))  # claims a turn, rounded up
    # Fresh user ids: one per claim, a block per claimer thread, one more per turn that ends
    # on an empty queue.
    users = args.tasks + args.claimers * (USER_BLOCK + 1) * 2 + args.claimers * 2 * len(sides)

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
            log("admission: the calling rules for every queued patient (as queue build does)")
            t0 = time.perf_counter()
            with transaction(session_factory(engine)) as s:
                admitted = admit_entries(s, NOW)
            admit_s = time.perf_counter() - t0
        if "audited" in sides:
            with engine.begin() as conn:
                for statement in FLOOR_AUDIT_TRIGGER_PG if postgres else (FLOOR_AUDIT_TRIGGER,):
                    conn.exec_driver_sql(statement)
        compact(engine)  # the rounds start from a compact table, fresh statistics, an empty WAL

        admission = "off (--no-compliance: admit=None)" if args.no_compliance else admission_state()
        log(
            f"{args.claimers} claimers, {args.rounds} rounds of {' / '.join(sides)} "
            f"({slice_:,} claims a turn) over {args.tasks:,} tasks; admission {admission}"
        )
        job = Job(
            "rounds",
            url,
            0,
            world.pharmacy_ids,
            world.first_user,
            no_compliance=args.no_compliance,
            tail_causes="" if postgres else args.tail_causes,
            checkpointer="off" if postgres else args.checkpointer,
        )
        outs = {side: Outcome() for side in sides}
        seconds = dict.fromkeys(sides, 0.0)
        detail: list[dict[str, Any]] = []
        turn_s = args.max_seconds / args.rounds if args.max_seconds else 0.0
        failed: list[str] = []
        with contextlib.ExitStack() as stack:
            sampler = stack.enter_context(LockSampler(url)) if postgres else None
            crew = Claimers(job, args.claimers, processes)
            stack.callback(crew.close)
            for r in range(args.rounds):
                # Floor, claim, audited floor; then the other way round: the claim always runs
                # between the two floors, and each floor as often first as last.
                for side in sides if r % 2 == 0 else sides[::-1]:
                    if sampler:
                        sampler.side = side
                    load = os.getloadavg()[0]
                    out = crew.run(side, slice_, turn_s)
                    if sampler:
                        sampler.side = ""
                    f = figures(out)
                    detail.append({"round": r + 1, "side": side, **f, "load1": round(load, 2)})
                    log(
                        f"round {r + 1}/{args.rounds} {SIDE_NAMES[side]}: {f['claims']:,} claims, "
                        f"{f['per_s']:,.1f}/s, p99 {f['p99_ms']:.2f} ms (load {load:.1f})"
                    )
                    outs[side].merge(out)
                    seconds[side] += f["seconds"]
                    if out.errors:
                        failed.append(f"{SIDE_NAMES[side]}: {out.errors[0]}")
                        break
                if failed:
                    break
        checks = double_claims(engine, outs)
        with engine.connect() as conn:
            audit_rows = conn.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "claim")
            )
        pgq: dict[str, Any] | None = None
        if postgres and not args.no_pgqueuer and not failed:
            jobs = args.pgqueuer_jobs or min(args.tasks, 100_000)
            pgq = pgqueuer_phase(url, args.tasks, min(jobs, args.tasks), args.claimers, processes)
        engine.dispose()

    prod, base = outs["product"], outs["baseline"]
    p, b = figures(prod, seconds["product"]), figures(base, seconds["baseline"])
    audited_floor: dict[str, Any] | None = None
    if "audited" in outs:
        audited_floor = {
            **figures(outs["audited"], seconds["audited"]),
            "double_claims": checks["audited"],
        }
    stopped = any(o.stopped_early for o in outs.values())
    rounds: dict[str, Any] = {
        "rounds": args.rounds,
        "round_claims": slice_,
        "round_order": "floor, claim_next, audited floor; the other way round in even rounds",
        "rounds_detail": detail,
        "round_ratio_vs_baseline": _round_ratios(detail, "product", "baseline", "per_s"),
        "round_p99_ratio_vs_baseline": _round_ratios(detail, "product", "baseline", "p99_ms"),
    }
    if audited_floor is not None:
        rounds["round_ratio_vs_audited_floor"] = _round_ratios(
            detail, "product", "audited", "per_s"
        )
        rounds["round_p99_ratio_vs_audited_floor"] = _round_ratios(
            detail, "product", "audited", "p99_ms"
        )
    result: dict[str, Any] = {
        "backend": args.backend,
        "tasks": args.tasks,
        "claimers": args.claimers,
        "processes": processes,
        "method": "alternating rounds on one queue",
        "sqlite_synchronous": sync or None,
        "compliance_admission": admission,
        "audit_chain": args.audit_chain,
        "lock_waiting_mean": sampler.mean_waiting("product") if sampler else None,
        "baseline_lock_waiting_mean": sampler.mean_waiting("baseline") if sampler else None,
        "audited_floor_lock_waiting_mean": (
            sampler.mean_waiting("audited") if sampler and audited_floor else None
        ),
        # The oldest transaction open on the server during each side's turns (seconds): over
        # HORIZON_HELD_S, that side's figures are not the claim's (see LockSampler).
        "horizon_held_s": sampler.horizon_held_s("product") if sampler else None,
        "baseline_horizon_held_s": sampler.horizon_held_s("baseline") if sampler else None,
        "audited_floor_horizon_held_s": (
            sampler.horizon_held_s("audited") if sampler and audited_floor else None
        ),
        "finished": not stopped and not failed and checks["unclaimed"] == checks["passed_over"],
        "claims": p["claims"],
        "seconds": p["seconds"],
        "claims_per_s": p["per_s"],
        "p50_ms": p["p50_ms"],
        "p90_ms": p["p90_ms"],
        "p99_ms": p["p99_ms"],
        "max_ms": p["max_ms"],
        "double_claims": checks["product"],
        "unclaimed": checks["unclaimed"],
        "passed_over": checks["passed_over"],
        # Audit rows of claims: the claim's own, plus the audited floor's (one a claim).
        "audited_claims": int(audit_rows or 0) - len(outs["audited"].ids if audited_floor else ()),
        "admission_precompute_s": round(admit_s, 3),
        "admitted_ahead": admitted,
        "one_statement_claims": prod.one_statement,
        "full_claims": prod.full_claims,
        "errors": [*failed, *prod.errors][:3],
        "baseline_finished": not base.stopped_early,
        "baseline_claims": b["claims"],
        "baseline_seconds": b["seconds"],
        "baseline_claims_per_s": b["per_s"],
        "baseline_p50_ms": b["p50_ms"],
        "baseline_p90_ms": b["p90_ms"],
        "baseline_p99_ms": b["p99_ms"],
        "baseline_max_ms": b["max_ms"],
        "baseline_double_claims": checks["baseline"],
        "ratio_vs_baseline": ratio(p["per_s"], b["per_s"]),
        "p99_ratio_vs_baseline": ratio(p["p99_ms"], b["p99_ms"]),
        **rounds,
        "switch_interval_s": sys.getswitchinterval(),
        "checkpointer": args.checkpointer,
    }
    tails: dict[str, Any] | None = None
    if any(o.notes for o in outs.values()):
        tails = tail_table([n for o in outs.values() for n in o.notes], sides)
        result["tail_causes"] = tails
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
        f"{args.claimers} claimers{setting}, {args.rounds} alternating rounds "
        f"(seconds: the side's turns summed)",
        ("dequeue", "claims", "seconds", "claims/s", "p50 ms", "p99 ms", "double"),
        rows,
    )
    by = {(d["round"], d["side"]): d for d in detail}
    round_rows: list[list[Any]] = []
    for r in sorted({d["round"] for d in detail}):
        row: list[Any] = [r, fmt(by.get((r, "product"), {}).get("load1"), 1)]
        for side in sides:
            cell = by.get((r, side))
            row += [fmt(cell["per_s"]) if cell else "-", fmt(cell["p99_ms"], 2) if cell else "-"]
        for floor in ("baseline", "audited") if audited_floor else ("baseline",):
            claim, under = by.get((r, "product"), {}), by.get((r, floor), {})
            both = bool(claim.get("claims") and under.get("claims"))
            row += [
                fmt(ratio(claim["per_s"], under["per_s"]), 3) if both else "-",
                fmt(ratio(claim["p99_ms"], under["p99_ms"]), 3) if both else "-",
            ]
        round_rows.append(row)
    header = ["round", "load"]
    for side in sides:
        header += [f"{SIDE_NAMES[side]}/s", "p99 ms"]
    header += ["claim/floor", "p99"]
    if audited_floor:
        header += ["claim/audited", "p99"]
    print()
    print_table("each round (the claim against the floors of the same round)", header, round_rows)
    print(f"compliance admission: {admission}")
    print(f"audit chain: {args.audit_chain}")
    if sampler:
        print(
            "connections waiting on a lock (mean of 50 ms samples): "
            f"claim_next {fmt(result['lock_waiting_mean'], 2)}, "
            f"floor {fmt(result['baseline_lock_waiting_mean'], 2)}, "
            f"audited floor {fmt(result['audited_floor_lock_waiting_mean'], 2)}"
        )
        for side in sides:
            warning = sampler.horizon_warning(side)
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
        f"p99 {fmt(result['p99_ratio_vs_baseline'], 3)}x{budgets[1]} (rounds: throughput "
        f"{_spread(rounds['round_ratio_vs_baseline'])}, p99 "
        f"{_spread(rounds['round_p99_ratio_vs_baseline'])}); "
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
            f"p99 {fmt(result['p99_ratio_vs_audited_floor'], 3)}x"
            f"{'' if postgres else ' (budget <= 1.5)'} (rounds: throughput "
            f"{_spread(rounds['round_ratio_vs_audited_floor'])}, p99 "
            f"{_spread(rounds['round_p99_ratio_vs_audited_floor'])})"
        )
    if pgq is not None:
        print(
            f"claim_next vs pgqueuer: {fmt(result['ratio_vs_pgqueuer_batch1'], 3)}x batch 1, "
            f"{fmt(result['ratio_vs_pgqueuer_batch10'], 3)}x batch 10 (budget >= 1 at batch 10)"
        )
    if tails:
        print()
        tail_rows: list[list[Any]] = []
        for cause in CAUSES:
            row = [cause]
            for side in sides:
                c = tails[side]["causes"][cause]
                row += [
                    f"{c['slowest']} ({fmt(c['slowest_mean_ms'], 1)} ms)" if c["slowest"] else "-",
                    f"{c['all_claims']:,}",
                ]
            tail_rows.append(row)
        header = ["cause (first that applies)"]
        for side in sides:
            header += [f"{SIDE_NAMES[side]}: slowest 1%", "all"]
        print_table("the slowest 1% of each side's claims, by cause", header, tail_rows)
        for side in sides:
            t = tails[side]
            m, a = t["slowest_mean"], t["all_mean"]
            if a["write_calls"] < 0:  # light: the WAL index only
                print(
                    f"{SIDE_NAMES[side]}: slowest {t['slowest']} from {t['slowest_from_ms']} ms "
                    f"(every claim: a checkpoint seen in {a['checkpoint_seen']:.2%})"
                )
                continue
            print(
                f"{SIDE_NAMES[side]}: slowest {t['slowest']} from {t['slowest_from_ms']} ms - mean "
                f"on CPU {m['cpu_ms']} ms, waiting for a CPU {m['runq_ms']} ms, off CPU "
                f"{m['off_cpu_ms']} ms, {m['voluntary_switches']} sleeps, {m['write_calls']} "
                f"write calls (every claim: {a['voluntary_switches']} sleeps, {a['write_calls']} "
                f"write calls, a checkpoint seen in {a['checkpoint_seen']:.2%})"
            )
    for error in result["errors"]:
        print(f"error: {error}", file=sys.stderr)
    if args.json:
        emit_json(result)
    clean = not any(checks[side] for side in sides)
    return 0 if clean and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
