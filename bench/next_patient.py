"""Key press "next" → patient drawn, and "dial" → INVITE out: the real console, driven by Pilot.

    bench/next_patient.py --backend sqlite|postgres [--patients N] [--claimers K] [--presses P]
                          [--json] [--database URL]

Builds (once, then cached) a world of N patients the way bench/queue_build.py does — patients,
phones, ~2.4 prescriptions each, 10 fills per patient, one campaign of every kind — and builds its
queues; each run works on a fresh copy of it (an SQLite file copied from the cache under /tmp, a
PostgreSQL database made from a template database kept on the server). Then it opens the real
`OutreachApp` with `App.run_test(size=(120, 40))`, signs in as an agent, and while K other claimers
work the same queue from other processes (each one console: claim, then record "no answer" or
release, in a loop, until told to stop) it times P presses of the agent's keys:

- `r` → the first frame in which the patient card names the patient and shows why they are
  called, the medications table has rows and the script panel shows its first step; with the
  number of database transactions the app's process began in between (SQLAlchemy's Engine
  "begin" event, plus the claim's one autocommit statement, which bypasses the Engine);
- `d` → the INVITE reaching the SIP peer: a UDP socket of this process on 127.0.0.1 that
  notes the kernel's arrival time of each first INVITE (SO_TIMESTAMPNS), answers 100 Trying,
  and ends the call with 487 when the console cancels it on `h`;
- then `h`, `w` and ctrl+s with "no answer", freeing the agent for the next `r`.

Then, while the same claimers still run, a press floor: a bare Textual app with the same widgets
whose `r` dequeues one patient as bench/claim.py's floor does and reads their name and
prescriptions, timed the same way (the work no console can skip, under the same load).

Memory: the app process's resident set after sign-in and after the presses, against a bare
Textual app with the same widgets (bench/_same_widgets.py: the agent's screen at the last patient,
dumped in the console's process and rebuilt from Textual's own classes in a fresh process that
imports nothing else) after the same number of redraws; beside it that app also reading each
patient through SQLAlchemy's ORM (a floor), and the small bare app of earlier runs.

Budgets (../shared/DESIGN.md): next p99 ≤ 100 ms on SQLite (no other claimers), ≤ 150 ms on
PostgreSQL with 50 other claimers; ≤ 2 transactions per next; memory ≤ 1.5× the bare app's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import inspect
import json
import multiprocessing as mp
import os
import queue
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    analyze,
    base_parser,
    emit_json,
    fmt,
    log,
    percentile,
    print_table,
    ratio,
    server_url,
)
from sqlalchemy import Engine, create_engine, event, make_url, select, text

WORLD_VERSION = 1  # bump when the world below changes: the cached copies are rebuilt
CACHE = Path(tempfile.gettempdir()) / "outreach-bench-next"
AGENT, PASSWORD = "benchagent", "bench-agent-pass-1"
NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # Wednesday: noon in Dallas, inside every window
FILLS_PER_PATIENT = 10  # as bench/queue_build.py: 100,000 patients, 1,000,000 fills
RECORD_SHARE = 0.5  # of the other claimers' claims, the share wrapped up (the rest released)
WAIT_S = 30.0  # a bound on waiting for the screen, never a pause
NAME = re.compile(r"Test Build\d+")  # the world's patients: "Test Build<k>"
BUDGET_NEXT_P99 = {"sqlite": 100.0, "postgres": 150.0}
BUDGET_TRANSACTIONS, BUDGET_RSS = 2.0, 1.5


# ---------------------------------------------------------------------------------------------
# The world: built once, copied for each run


def _world_key(patients: int) -> str:
    versions = ROOT / "queues" / "store" / "migrations" / "versions"
    names = sorted(p.name for p in versions.glob("*.py"))
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:8]
    return f"w{WORLD_VERSION}_{patients}_{digest}"


def build_world(engine: Engine, patients: int) -> None:
    """Patients, phones, prescriptions and fills as bench/queue_build.py makes them, the queues
    built at NOW (with the calling-rule check ahead), and the agent who signs in."""
    from queue_build import fill_world

    from queues.auth import add_user
    from queues.building.build import build_queues
    from queues.store.db import session_factory, transaction, upgrade
    from queues.store.models import Pharmacy

    upgrade(engine)
    fill_world(engine, patients, patients * FILLS_PER_PATIENT, seed=7)
    sessions = session_factory(engine)
    log("building the queues (queues.building.build.build_queues)")
    with transaction(sessions) as s:
        build_queues(s, NOW)
    with transaction(sessions) as s:
        codes = list(s.scalars(select(Pharmacy.code)))
        add_user(s, AGENT, PASSWORD, "agent", codes, display_name="Bench Agent")
    analyze(engine)


@contextlib.contextmanager
def run_database(backend: str, server: str | None, patients: int) -> Iterator[tuple[str, float]]:
    """A fresh copy of the cached world for one run, and how long building it took (0 when it
    was cached); the copy is removed afterwards."""
    from queues.store.db import make_engine

    key = _world_key(patients)
    built_s = 0.0
    if backend == "sqlite":
        CACHE.mkdir(parents=True, exist_ok=True)
        cached = CACHE / f"{key}.db"
        if not cached.exists():
            log(f"building the {patients:,}-patient world (cached as {cached})")
            t0 = time.perf_counter()
            partial = CACHE / f"{key}.building.db"
            for leftover in CACHE.glob(f"{key}.building.db*"):
                leftover.unlink()
            engine = make_engine(f"sqlite:///{partial}")
            build_world(engine, patients)
            raw = engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
            finally:
                raw.close()
            engine.dispose()
            partial.rename(cached)
            built_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="outreach-bench-next-") as tmp:
            copy = Path(tmp) / "run.db"
            shutil.copyfile(cached, copy)
            yield f"sqlite:///{copy}", built_s
        return
    assert server is not None
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    template = f"bench_next_{key}"
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template})
    if not exists:
        log(f"building the {patients:,}-patient world (kept as database {template})")
        t0 = time.perf_counter()
        building = f"{template}_building"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{building}"'))
        engine = make_engine(_on(server, building))
        build_world(engine, patients)
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{template}"'))
        built_s = time.perf_counter() - t0
    name = f"bench_next_run_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _on(server, name), built_s
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _on(server: str, database: str) -> str:
    return make_url(server).set(database=database).render_as_string(hide_password=False)


def add_claimers(engine: Engine, count: int) -> tuple[list[int], list[int]]:
    """`count` agents for the other consoles (every pharmacy each); their ids and the pharmacies."""
    from queues.store.db import session_factory, transaction
    from queues.store.models import Pharmacy, User

    with transaction(session_factory(engine)) as s:
        pharmacies = list(s.scalars(select(Pharmacy)))
        users = [
            User(
                username=f"benchclaimer{i}",
                display_name=f"Claimer {i}",
                role="agent",
                password_hash="-",
                pharmacies=pharmacies,
            )
            for i in range(count)
        ]
        s.add_all(users)
        s.flush()
        return [u.id for u in users], [p.id for p in pharmacies]


# ---------------------------------------------------------------------------------------------
# The other consoles: claim, then record "no answer" or release, until told to stop


def _claimer_process(
    url: str, users: list[int], pharmacy_ids: list[int], ready: Any, stop: Any, out: Any
) -> None:
    from queues.claims import claiming
    from queues.claims.fast_claimer import Claimer
    from queues.clock import PracticeClock
    from queues.outcomes import Outcome, record_outcome
    from queues.store.db import make_engine, session_factory, transaction

    engine = make_engine(url, pool_size=len(users) + 1)
    sessions = session_factory(engine)
    clock = PracticeClock(NOW)
    counts = {"claims": 0, "recorded": 0, "released": 0, "empty": 0, "errors": 0}
    lock = threading.Lock()
    first_error: list[str] = []

    def console(user: int, seed: int) -> None:
        rng = random.Random(seed)
        claimer = Claimer(engine, sessions)  # one per console, as console.services builds it
        claimer.open()
        mine = dict.fromkeys(counts, 0)
        while not stop.is_set():
            try:
                now = clock.now()
                claim = claimer.next(
                    user_id=user, pharmacy_ids=pharmacy_ids, now=now, lease_seconds=300
                )
                if claim is None:
                    mine["empty"] += 1
                    time.sleep(0.05)
                    continue
                mine["claims"] += 1
                with transaction(sessions) as s:
                    if rng.random() < RECORD_SHARE:
                        outcome = Outcome(
                            uid=str(uuid.uuid4()),
                            patient_id=claim.patient_id,
                            lease_token=claim.lease_token,
                            user_id=user,
                            disposition="no_answer",
                            started_at=now,
                            ended_at=clock.now(),
                            call_result="no_answer",
                        )
                        record_outcome(s, outcome, clock.now())
                        mine["recorded"] += 1
                    else:
                        claiming.release(s, claim.patient_id, claim.lease_token, clock.now(), user)
                        mine["released"] += 1
            except Exception as exc:  # counted and reported; the console goes on
                mine["errors"] += 1
                with lock:
                    if not first_error:
                        first_error.append(f"{type(exc).__name__}: {exc}"[:300])
                time.sleep(0.01)
        claimer.close()
        with lock:
            for k, v in mine.items():
                counts[k] += v

    threads = [
        threading.Thread(target=console, args=(u, u), name=f"claimer-{u}", daemon=True)
        for u in users
    ]
    ready.put(len(users))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    out.put({**counts, "first_error": first_error[0] if first_error else ""})


@dataclasses.dataclass
class Claimers:
    procs: list[Any]
    stop: Any
    out: Any

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        total: dict[str, Any] = {"first_error": ""}
        for _ in self.procs:
            part = self.out.get(timeout=120)
            for k, v in part.items():
                if k == "first_error":
                    total[k] = total[k] or v
                else:
                    total[k] = total.get(k, 0) + v
        for p in self.procs:
            p.join(timeout=30)
        return total


def start_claimers(url: str, users: list[int], pharmacy_ids: list[int], processes: int) -> Claimers:
    ctx = mp.get_context("spawn")  # nothing of this process (engine, threads) is inherited
    stop, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    shares = [users[i::processes] for i in range(processes)]
    procs = [
        ctx.Process(target=_claimer_process, args=(url, share, pharmacy_ids, ready, stop, out))
        for share in shares
        if share
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    return Claimers(procs, stop, out)


# ---------------------------------------------------------------------------------------------
# The SIP peer: notes when each call's first INVITE arrives (the kernel's timestamp)


class InvitePeer:
    """A UDP SIP peer on 127.0.0.1 that answers 100 Trying to an INVITE, 200 + 487 to its CANCEL,
    200 to anything else, and records the arrival time (CLOCK_REALTIME, from the kernel) of each
    call's first INVITE."""

    SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python does not name it
    COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id"}

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPNS, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.invites: dict[str, float] = {}  # Call-ID -> arrival, seconds since the epoch
        self.arrived = threading.Event()
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="bench-sip-peer", daemon=True)
        self._thread.start()

    def expect(self) -> None:
        self.arrived.clear()

    def latest(self) -> float:
        return max(self.invites.values())

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self.sock.close()

    def _serve(self) -> None:
        while self._running:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(16))
            except TimeoutError:
                continue
            except OSError:
                return
            arrived = time.time()
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == self.SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    arrived = sec + nsec / 1e9
            self._answer(data.decode("utf-8", "replace"), addr, arrived)

    def _answer(self, message: str, addr: Any, arrived: float) -> None:
        head, _, _ = message.partition("\r\n\r\n")
        lines = head.split("\r\n")
        if lines[0].startswith("SIP/2.0"):
            return  # a response: nothing to do
        method = lines[0].split(" ", 1)[0]
        vias: list[str] = []
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = self.COMPACT.get(name.strip().lower(), name.strip().lower())
            if name == "via":
                vias.append(value.strip())
            elif name in ("from", "to", "call-id", "cseq"):
                fields[name] = value.strip()
        call_id, cseq = fields.get("call-id", ""), fields.get("cseq", "")
        if method == "INVITE":
            if call_id not in self.invites:
                self.invites[call_id] = arrived
                self.arrived.set()
            self._send(addr, "100 Trying", vias, fields, fields.get("to", ""), cseq)
        elif method == "CANCEL":
            self._send(addr, "200 OK", vias, fields, fields.get("to", ""), cseq)
            number = cseq.split(" ", 1)[0]
            to = fields.get("to", "") + ";tag=benchpeer"
            self._send(addr, "487 Request Terminated", vias, fields, to, f"{number} INVITE")
        elif method != "ACK":
            self._send(addr, "200 OK", vias, fields, fields.get("to", ""), cseq)

    def _send(
        self, addr: Any, status: str, vias: list[str], fields: dict[str, str], to: str, cseq: str
    ) -> None:
        lines = [f"SIP/2.0 {status}", *(f"Via: {v}" for v in vias)]
        lines += [f"From: {fields.get('from', '')}", f"To: {to}"]
        lines += [f"Call-ID: {fields.get('call-id', '')}", f"CSeq: {cseq}", "Content-Length: 0"]
        with contextlib.suppress(OSError):
            self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), addr)


# ---------------------------------------------------------------------------------------------
# The console under Pilot


def rss_mb() -> float:
    """This process's resident set now (/proc/self/statm), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


MEMORY_TRACE_ENV = "OUTREACH_BENCH_MEMORY_TRACE"  # --memory-trace, read by the console's process


class MemoryTrace:
    """--memory-trace A: what the console's process keeps between press A and the last press —
    live objects by type after a full collection, and tracemalloc's growth by traceback (traced
    from the first press, so the run is slower: its timings are not comparable)."""

    def __init__(self) -> None:
        self.at = int(os.environ.get(MEMORY_TRACE_ENV, "0"))
        self._first: tuple[Any, dict[str, int], float] | None = None

    def press(self, n: int) -> None:
        if not self.at:  # a plain run: tracemalloc not even imported (it is the console's memory)
            return
        import tracemalloc

        if n == 1:
            tracemalloc.start(10)
        if n == self.at:
            self._first = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[Any, dict[str, int], float]:
        import collections
        import gc
        import tracemalloc

        gc.collect()
        types = collections.Counter(
            f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
        )
        return tracemalloc.take_snapshot(), dict(types), rss_mb()

    def report(self, last: int) -> None:
        if self._first is None:
            return
        (snap1, types1, rss1), (snap2, types2, rss2) = self._first, self._snapshot()
        log(f"memory from press {self.at} to {last}: RSS {rss1} -> {rss2} MiB")
        grown = sorted(((n - types1.get(t, 0), t) for t, n in types2.items()), reverse=True)
        for count, name in grown[:25]:
            log(f"  {count:+8,d} {name}")
        for stat in snap2.compare_to(snap1, "traceback")[:15]:
            log(f"  {stat.size_diff / 1024:+9,.0f} KiB in {stat.count_diff:+,d} blocks, from:")
            for line in stat.traceback.format(limit=6):
                log(f"      {line.strip()[:150]}")


def _plain(content: Any) -> str:
    """The text of what a Static shows (a str, a rich Text or Group, a Textual Content)."""
    renderables = getattr(content, "renderables", None)
    if renderables is not None:
        return "\n".join(_plain(r) for r in renderables)
    return str(getattr(content, "plain", content))


def _text_of(screen: Any, selector: str) -> str:
    return " ".join(_plain(w.content) for w in screen.query(selector))


def _shown_noting_nobody(screen: Any, frame: Any, fig: Figures) -> Any:
    """frame.shown, noting a claim that found nobody callable on its way."""
    if not fig.seen_nobody and getattr(screen, "phase", None) == "waiting":
        fig.seen_nobody = True
        fig.found_nobody += 1
        if not fig.found_nobody_why:
            fig.found_nobody_why = " ".join(_text_of(screen, "PatientCard").split())[:300]
    return frame.shown()


def patient_drawn(screen: Any) -> str | None:
    """The patient's name once the card shows it with their reasons, the medications table has
    rows and the script panel its first step; else None. (Selectors by widget class, so they
    outlive a module move.)"""
    card = _text_of(screen, "PatientCard")
    name = NAME.search(card)
    if name is None or "•" not in card:
        return None
    if not any(t.row_count for t in screen.query("MedicationsTable")):
        return None
    step = _text_of(screen, "ScriptPanel #script-text").strip()
    if not step or step.startswith("The script appears here"):
        return None
    if step.startswith(("Script not available", "Refused")):
        raise RuntimeError(f"the script panel says: {step[:200]}")
    return name.group(0)


def send_key(app: Any, key: str) -> None:
    """The key as a terminal sends it (the driver posts it to the app), without Pilot.press's
    waits for the process to go idle (at least 2 × 20 ms, which would floor every figure)."""
    from textual import events

    key_event = events.Key(key, key if len(key) == 1 else None)
    key_event.set_sender(app)
    app._driver.send_message(key_event)


async def until(pilot: Any, ready: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.perf_counter() + timeout
    while True:
        got = ready()
        if got:
            return got
        if time.perf_counter() > deadline:
            shown = " ".join(_text_of(pilot.app.screen, "Static").split())[:600]
            # What the console told the agent (a failed save stays on its screen with a notice).
            notices = " | ".join(n.message for n in pilot.app._notifications)[:600]
            raise RuntimeError(
                f"timed out waiting for {what}; {type(pilot.app.screen).__name__}: {shown}; "
                f"notices: {notices or 'none'}"
            )
        await asyncio.sleep(0.001)


@dataclasses.dataclass
class Figures:
    next_ms: list[float] = dataclasses.field(default_factory=list)
    next_cpu_ms: list[float] = dataclasses.field(default_factory=list)  # the event loop's CPU
    dial_ms: list[float] = dataclasses.field(default_factory=list)
    transactions: list[int] = dataclasses.field(default_factory=list)
    names: list[str] = dataclasses.field(default_factory=list)
    not_dialable: int = 0
    # Presses whose claim found nobody callable (the card says why; the console looks again
    # 10 s later, so such a press is ~10 s): how many, and the first card's text.
    found_nobody: int = 0
    found_nobody_why: str = ""
    seen_nobody: bool = False  # within the current press
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    # The agent's screen after the presses, as data (bench/_same_widgets.py): the bare app of
    # the memory budget rebuilds it from Textual's classes.
    tree: dict[str, Any] | None = None


class TransactionCount:
    """Transactions the app's process begins: SQLAlchemy's "begin" on every Engine, and the
    claim's one statement in autocommit on the claimer's own driver connection, which no Engine
    event sees (counted by wrapping `Claimer._one_statement`, the only place it runs)."""

    def __init__(self) -> None:
        from queues.claims.fast_claimer import Claimer

        self.begins = 0
        self.statements = 0
        self._claimer = Claimer
        self._original = Claimer._one_statement
        original = self._original

        def counted(claimer: Any, *args: Any, **kwargs: Any) -> Any:
            self.statements += 1
            return original(claimer, *args, **kwargs)

        Claimer._one_statement = counted  # type: ignore[method-assign,assignment]
        event.listen(Engine, "begin", self._begin)

    def _begin(self, _conn: Any) -> None:
        self.begins += 1

    def now(self) -> int:
        return self.begins + self.statements

    def close(self) -> None:
        event.remove(Engine, "begin", self._begin)
        self._claimer._one_statement = self._original  # type: ignore[method-assign]


class FirstFrame:
    """The time of the first frame the app paints with the patient drawn: the check runs in the
    app's own display call, on the DOM the frame was just rendered from. (Headless, the compositor
    still renders every update; only the write to a terminal is skipped.)"""

    def __init__(self, app: Any, screen: Any, count: Callable[[], int]) -> None:
        self.screen, self.count = screen, count
        self.waiting = False
        self.seen: tuple[str, float, int, float] | None = None
        self._display = app._display
        app._display = self._painted

    def wait(self) -> None:
        self.seen, self.waiting = None, True

    def shown(self) -> tuple[str, float, int, float] | None:
        return self.seen

    def _painted(self, screen: Any, renderable: Any) -> None:
        self._display(screen, renderable)
        if self.waiting and renderable is not None and screen is self.screen:
            name = patient_drawn(screen)
            if name is not None:
                seen = (name, time.perf_counter(), self.count(), time.thread_time())
                self.seen, self.waiting = seen, False


# The console's process imports no test code: tests.e2e.helpers brings the test world's builder
# and the queue build with it (+0.5 MiB the console itself never loads, counted in rss_end_mb until
# 2026-12-07). So the three steps the run needs from it are here, done as the tests do them.


async def sign_in(pilot: Any, username: str, password: str) -> None:
    """Type the user name and password on the sign-in screen and press Enter in the password."""
    from textual.widgets import Input

    screen = pilot.app.screen
    screen.query_one("#username", Input).value = username
    screen.query_one("#password", Input).value = password
    screen.query_one("#password", Input).focus()
    await pilot.press("enter")


async def settle(pilot: Any) -> None:
    """Until two rounds in a row find no worker running (a failed or cancelled one is done)."""
    from textual.worker import WorkerCancelled, WorkerFailed

    idle = 0
    for _ in range(50):
        with contextlib.suppress(WorkerFailed, WorkerCancelled):
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        idle = 0 if any(w.is_running for w in pilot.app.workers) else idle + 1
        if idle == 2:
            return


async def choose_disposition(pilot: Any, disposition: str) -> None:
    """On the wrap-up, highlight `disposition` in the list and choose it."""
    wrap = pilot.app.screen
    listed = wrap.query_one("#disposition")
    listed.highlighted = list(wrap.options).index(disposition)
    listed.focus()
    await pilot.press("enter")


async def drive(services: Any, presses: int, peer: InvitePeer, fig: Figures) -> None:
    from console.app import OutreachApp

    app = OutreachApp(services)
    async with app.run_test(size=(120, 40)) as pilot:
        await sign_in(pilot, AGENT, PASSWORD)
        await settle(pilot)
        await until(
            pilot,
            lambda: type(app.screen).__name__ == "WorkspaceScreen",
            "the workspace after signing in",
        )
        screen = app.screen
        await until(pilot, lambda: screen.check_action("ready", ()) is True, "Ready")
        fig.rss_start_mb = rss_mb()
        trace = MemoryTrace()
        counter = TransactionCount()
        frame = FirstFrame(app, screen, counter.now)
        try:
            for n in range(presses):
                before = counter.now()
                frame.wait()
                t0, cpu0 = time.perf_counter(), time.thread_time()
                send_key(app, "r")
                name, t1, after, cpu1 = await until(
                    pilot, partial(_shown_noting_nobody, screen, frame, fig), f"patient {n + 1}"
                )
                fig.seen_nobody = False
                fig.next_ms.append((t1 - t0) * 1000)
                fig.next_cpu_ms.append((cpu1 - cpu0) * 1000)
                fig.transactions.append(after - before)
                fig.names.append(name)
                trace.press(n + 1)
                await pilot.pause()
                if n == presses - 1:
                    # The last patient's screen, settled (the footer's keys too), for the bare
                    # app of the memory budget to rebuild.
                    from _same_widgets import screen_tree

                    fig.tree = screen_tree(app, screen)
                if screen.check_action("dial", ()) is True:
                    peer.expect()
                    pressed = time.time()
                    send_key(app, "d")
                    await until(pilot, peer.arrived.is_set, "the INVITE")
                    fig.dial_ms.append((peer.latest() - pressed) * 1000)
                    await until(pilot, lambda: screen.check_action("hangup", ()) is True, "on call")
                    await pilot.press("h")
                    await until(
                        pilot, lambda: screen.check_action("wrap_up", ()) is True, "the hang-up"
                    )
                else:
                    fig.not_dialable += 1
                await pilot.press("w")
                await until(pilot, lambda: app.screen is not screen, "the wrap-up")
                wrap = app.screen
                await until(pilot, partial(getattr, wrap, "options", None), "the dispositions")
                if "none yet" in _text_of(wrap, "#disposition-chosen"):
                    await choose_disposition(pilot, "no_answer")
                await pilot.press("ctrl+s")
                await until(pilot, lambda: app.screen is screen, "the save")
                await until(pilot, lambda: screen.check_action("ready", ()) is True, "Ready again")
                if (n + 1) % 25 == 0:
                    log(f"{n + 1} presses")
        finally:
            counter.close()
        fig.rss_end_mb = rss_mb()
        trace.report(presses)


def run_console(url: str, presses: int, work: str, out: Any) -> None:
    """The console and its SIP peer, in a process of their own (spawned: nothing of the world's
    build is in its memory); the figures go back through `out`."""
    from console.config import DatabaseSettings, LogSettings, Settings, SipSettings, UiSettings
    from queues.clock import PracticeClock

    peer = InvitePeer()
    settings = Settings(
        database=DatabaseSettings(url=url),
        ui=UiSettings(drafts_path=str(Path(work) / "drafts"), idle_lock_minutes=0),
        log=LogSettings(path=str(Path(work) / "outreach.log")),
        sip=SipSettings(server="127.0.0.1", port=peer.port, audio=False),
    )
    fig = Figures()
    try:
        services = make_services(settings, PracticeClock(NOW))
        asyncio.run(drive(services, presses, peer, fig))
        services.close()
    except Exception as exc:
        log_file = Path(work) / "outreach.log"  # errors and events only: no health information
        tail = log_file.read_text(errors="replace").splitlines()[-15:] if log_file.exists() else []
        out.put(f"{type(exc).__name__}: {exc}" + "".join(f"\n  log: {line}" for line in tail))
        raise
    finally:
        peer.close()
    out.put(fig)


def make_services(settings: Any, clock: Any) -> Any:
    """The app's services as the CLI builds them, on the bench's clock (console.services is
    being reshaped: this looks for its builder where it has lived)."""
    import importlib

    for module in ("console.services", "console.services.container"):
        try:
            build = importlib.import_module(module).build_services
        except (ImportError, AttributeError):
            continue
        if "clock" in inspect.signature(build).parameters:
            return build(settings, clock=clock)
        return dataclasses.replace(build(settings), clock=clock)
    raise RuntimeError("no console.services.build_services: adapt bench/next_patient.py")


def in_own_process(target: Callable[..., None], args: tuple[Any, ...], what: str) -> Any:
    """Run `target(*args, out)` in a spawned process (nothing of this one is inherited) and
    return what it puts on `out`; a process that dies first ends the run with what it was."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out))
    proc.start()
    got: Any = None
    while got is None:
        with contextlib.suppress(queue.Empty):
            got = out.get(timeout=1)
        if got is None and not proc.is_alive():
            got = f"the process ended with {proc.exitcode}"
    proc.join()
    if isinstance(got, str):
        raise SystemExit(f"error: {what} failed: {got}")
    return got


def console_figures(url: str, presses: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="outreach-bench-next-app-") as work:
        fig: Figures = in_own_process(run_console, (url, presses, work), "the console run")
    return fig


def bare_widgets() -> Iterator[Any]:
    """The press floor's widgets, and the small bare app's (the memory figures' bare app before
    2026-12-07's fifth stop; the budget's is now bench/_same_widgets.py): Header, a status and a
    card Static, a DataTable, a VerticalScroll of Statics, Footer."""
    from textual.containers import VerticalScroll
    from textual.widgets import DataTable, Footer, Header, Static

    yield Header()
    yield Static("", id="status")
    yield Static("", id="card")
    yield DataTable(id="meds")
    with VerticalScroll(id="script"):
        for part in ("head", "text", "choices", "answers"):
            yield Static("", id=part)
    yield Footer()


# ---------------------------------------------------------------------------------------------
# The press floor: the least any console does for `r`, timed as the console is, in the same run


FLOOR_DEQUEUE = {  # bench/claim.py's bare dequeue, marking the row as that floor does
    "postgresql": (
        "SELECT patient_id FROM queue_entries WHERE status = 'open' AND claimed_at IS NULL "
        "AND blocked_reason IS NULL ORDER BY sort_key, patient_id LIMIT 1 FOR UPDATE SKIP LOCKED",
        "UPDATE queue_entries SET status = 'claimed', holder_id = :u WHERE patient_id = :p",
    ),
    "sqlite": (
        "UPDATE queue_entries SET status = 'claimed', holder_id = :u WHERE patient_id = "
        "(SELECT patient_id FROM queue_entries WHERE status = 'open' AND claimed_at IS NULL "
        "AND blocked_reason IS NULL ORDER BY sort_key, patient_id LIMIT 1) RETURNING patient_id",
        "",
    ),
}
FLOOR_READ = (
    "SELECT p.first_name, p.last_name, p.birth_date, p.language, r.drug_name, r.refills_left "
    "FROM patients p LEFT JOIN prescriptions r ON r.patient_id = p.id WHERE p.id = :p"
)


def floor_press_ms(url: str, presses: int, user_id: int) -> list[float]:
    """`r` in a bare Textual app with the workspace's main widgets (bare_widgets): a thread
    worker dequeues one patient (the bare SKIP LOCKED / UPDATE…RETURNING of bench/claim.py) and
    reads their name and prescriptions in one transaction, then the widgets are updated; timed
    from the key to the first frame painted with the name, as the console's presses are. The
    work no console can skip, on the same database while the same other claimers run: it shows
    how much of the console's figure is the machine's queue, not the console."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Static

    engine = create_engine(url, pool_size=2)
    dequeue, mark = FLOOR_DEQUEUE[engine.dialect.name]

    class Floor(App[None]):
        BINDINGS = [("r", "next", "Next")]

        def compose(self) -> ComposeResult:
            yield from bare_widgets()

        def action_next(self) -> None:
            self.run_worker(self._next, thread=True, exclusive=True)

        def _next(self) -> None:
            with engine.begin() as conn:
                patient = conn.execute(text(dequeue), {"u": user_id}).scalar_one()
                if mark:
                    conn.execute(text(mark), {"u": user_id, "p": patient})
                rows = conn.execute(text(FLOOR_READ), {"p": patient}).all()
            self.call_from_thread(self._draw, patient, rows)

        def _draw(self, patient: int, rows: list[Any]) -> None:
            first, last, born, language = rows[0][:4]
            self.query_one("#status", Static).update(f"PREVIEW · patient {patient}")
            self.query_one("#card", Static).update(
                f"{first} {last}  {born} · {language}\nWhy this patient:\n • Refill: runs out"
            )
            table = self.query_one(DataTable)
            table.clear()
            for row in rows:
                table.add_row("Dec 01", row[4] or "", str(row[5] or 0), "Nov 01, 2026", "30", "")
            for part in ("head", "text", "choices", "answers"):
                self.query_one(f"#{part}", Static).update(f"{part} of step 1 for {first}")

    times: list[float] = []

    async def run() -> None:
        app = Floor()
        async with app.run_test(size=(120, 40)) as pilot:
            app.query_one(DataTable).add_columns(
                "Runs out", "Medication", "Refills", "Last fill", "Days", "Class"
            )
            await pilot.pause()
            seen: list[float] = []
            waiting = [""]
            display = app._display

            def painted(screen: Any, renderable: Any) -> None:
                display(screen, renderable)
                card = _plain(app.query_one("#card", Static).content)
                fresh = waiting[0] and waiting[0] not in card and NAME.search(card)
                if fresh and renderable is not None:
                    seen.append(time.perf_counter())
                    waiting[0] = ""

            app._display = painted  # type: ignore[method-assign]
            for _ in range(presses):
                waiting[0] = _plain(app.query_one("#card", Static).content) or "\0"
                t0 = time.perf_counter()
                send_key(app, "r")
                await until(pilot, lambda: not waiting[0], "the floor's patient")
                times.append((seen[-1] - t0) * 1000)
                await pilot.pause()

    try:
        asyncio.run(run())
    finally:
        engine.dispose()
    return times


def _floor_process(url: str, presses: int, user_id: int, out: Any) -> None:
    try:
        out.put(floor_press_ms(url, presses, user_id))
    except Exception as exc:
        out.put(f"{type(exc).__name__}: {exc}")
        raise


def floor_figures(url: str, presses: int, user_id: int) -> list[float]:
    times: list[float] = in_own_process(_floor_process, (url, presses, user_id), "the press floor")
    return times


# ---------------------------------------------------------------------------------------------
# The small bare app of the runs before 2026-12-07's fifth stop (rss_bare_small_mb), and the
# same-widgets app of the budget (bench/_same_widgets.py, in a process of its own)


def bare_app_rss(redraws: int, store_url: str | None = None) -> float:
    """RSS of a bare Textual app with the workspace's widgets after `redraws` redraws; with
    `store_url`, the same app also reading each redraw's patient through SQLAlchemy's ORM from
    the product's tables (the design card's persistence: what no implementation can skip)."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Static

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield from bare_widgets()

    read = None
    if store_url:
        from sqlalchemy import create_engine, select
        from sqlalchemy.orm import Session

        from queues.store.models import Patient

        store = create_engine(store_url)

        def read(n: int) -> object:
            with Session(store) as session:
                return session.scalars(select(Patient).where(Patient.id == n + 1)).first()

    async def run() -> float:
        app = Bare()
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.query_one(DataTable)
            table.add_columns("Runs out", "Medication", "Refills", "Last fill", "Days", "Class")
            for n in range(redraws):
                if read is not None:
                    read(n)
                app.query_one("#status", Static).update(f"PREVIEW · patient {n}")
                app.query_one("#card", Static).update(
                    f"Test Build{n}  71 y · English\nWhy this patient:\n • Refill: runs out"
                )
                table.clear()
                for m in range(3):
                    table.add_row(
                        f"Dec {m + 1:02d}", f"Drug {n}-{m}", "2", "Nov 01, 2026", "30", ""
                    )
                for part in ("head", "text", "choices", "answers"):
                    app.query_one(f"#{part}", Static).update(f"{part} of step 1 for {n}")
                await pilot.pause()
        return rss_mb()

    return asyncio.run(run())


def measure_same(
    tree: dict[str, Any], redraws: int, store_url: str | None = None
) -> dict[str, Any]:
    """The bare app of the budget: the agent's screen after the presses rebuilt from Textual's
    classes (bench/_same_widgets.py), in a process that imports Textual and nothing of the
    console, SQLAlchemy or this file (`store_url`: plus the ORM reads, as a floor)."""
    with tempfile.NamedTemporaryFile("w", prefix="outreach-bench-tree-", suffix=".json") as f:
        json.dump(tree, f)
        f.flush()
        script = str(Path(__file__).with_name("_same_widgets.py"))
        store = ["--store", store_url] if store_url else []
        out = subprocess.run(
            [sys.executable, script, f.name, "--redraws", str(redraws), *store],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    if out.returncode:
        raise SystemExit(f"error: the same-widgets bare app failed: {out.stderr[-2000:]}")
    got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return got


def measure_bare(redraws: int, store_url: str | None = None) -> float:
    store = ["--bare-store", store_url] if store_url else []
    out = subprocess.run(
        [sys.executable, __file__, "--bare-redraws", str(redraws), *store],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Figures


def within(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def main(argv: list[str] | None = None) -> int:
    if argv is None and "--bare-redraws" in sys.argv:  # the bare app's own process
        bare = argparse.ArgumentParser()
        bare.add_argument("--bare-redraws", type=int, required=True)
        bare.add_argument("--bare-store", default=None)
        bare_args = bare.parse_args()
        print(bare_app_rss(bare_args.bare_redraws, bare_args.bare_store))
        return 0
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000, metavar="N")
    parser.add_argument("--claimers", type=int, default=0, metavar="K")
    parser.add_argument("--presses", type=int, default=200, metavar="P")
    parser.add_argument(
        "--claimer-processes",
        type=int,
        default=0,
        help="spread the other claimers over this many processes (default: one per 10 claimers)",
    )
    parser.add_argument(
        "--memory-trace",
        type=int,
        default=0,
        metavar="A",
        help="print what the console's memory kept from press A to the last (objects by type, "
        "tracemalloc by traceback); slows the run and adds tracemalloc's own memory: its timings "
        "and RSS are not comparable",
    )
    args = parser.parse_args(argv)
    if args.memory_trace:
        os.environ[MEMORY_TRACE_ENV] = str(args.memory_trace)  # the console's spawned process
    if args.patients < 100 or args.presses < 1 or args.claimers < 0:
        parser.error("--patients at least 100, --presses at least 1, --claimers at least 0")
    postgres = args.backend == "postgres"
    server = server_url(args) if postgres else None
    processes = args.claimer_processes or max(1, (args.claimers + 9) // 10)

    with run_database(args.backend, server, args.patients) as (url, built_s):
        from queues.store.db import make_engine

        engine = make_engine(url)
        queued = 0
        with engine.connect() as conn:
            queued = int(conn.scalar(text("SELECT count(*) FROM queue_entries")) or 0)
            agent_id = int(
                conn.scalar(text("SELECT id FROM users WHERE username = :u"), {"u": AGENT}) or 0
            )
        users, pharmacy_ids = add_claimers(engine, args.claimers)
        engine.dispose()
        claimers = None
        if args.claimers:
            log(f"{args.claimers} other claimers in {processes} processes")
            claimers = start_claimers(url, users, pharmacy_ids, processes)
        try:
            log(f"the console: {args.presses} presses of r, d, h, w, ctrl+s")
            fig = console_figures(url, args.presses)
            log(f"the press floor: {args.presses} presses of r in a bare app, same database")
            floor_ms = sorted(floor_figures(url, args.presses, agent_id))
        finally:
            others = claimers.finish() if claimers else {}
        assert fig.tree is not None
        log("the bare app with the same widgets, reading each patient through SQLAlchemy's ORM")
        bare_store = measure_same(fig.tree, args.presses, url)
    log("the bare app with the same widgets as the agent's screen")
    bare = measure_same(fig.tree, args.presses)
    log("the small bare app of earlier runs (in this file's process: SQLAlchemy imported)")
    rss_bare_small = measure_bare(args.presses)
    rss_bare, rss_bare_store = bare["rss_mb"], bare_store["rss_mb"]
    if bare["first_differ"]:
        shown, drawn = bare["first_differ"]
        log(
            f"the bare app draws {bare['lines_differ']} lines otherwise; the first, the agent's "
            f"screen then the bare app's:\n  {shown}\n  {drawn}"
        )

    nxt, dial, cpu = sorted(fig.next_ms), sorted(fig.dial_ms), sorted(fig.next_cpu_ms)
    tx = fig.transactions
    result: dict[str, Any] = {
        "backend": args.backend,
        "patients": args.patients,
        "claimers": args.claimers,
        "claimer_processes": processes if args.claimers else 0,
        "presses": args.presses,
        "queued_patients": queued,
        "world_build_s": round(built_s, 1) if built_s else None,
        "next_p50_ms": round(percentile(nxt, 50), 1),
        "next_p90_ms": round(percentile(nxt, 90), 1),
        "next_p99_ms": round(percentile(nxt, 99), 1),
        "next_max_ms": round(nxt[-1], 1) if nxt else 0.0,
        # The press floor (floor_press_ms): the same presses' least work, same run, same load.
        "floor_next_p50_ms": round(percentile(floor_ms, 50), 1),
        "floor_next_p99_ms": round(percentile(floor_ms, 99), 1),
        "next_p99_vs_floor": ratio(percentile(nxt, 99), percentile(floor_ms, 99)),
        "next_loop_cpu_p50_ms": round(percentile(cpu, 50), 1),
        "next_loop_cpu_p99_ms": round(percentile(cpu, 99), 1),
        "next_loop_cpu_mean_ms": round(sum(cpu) / len(cpu), 1) if cpu else None,
        "dials": len(dial),
        "not_dialable": fig.not_dialable,
        "found_nobody": fig.found_nobody,
        "found_nobody_why": fig.found_nobody_why,
        "dial_p50_ms": round(percentile(dial, 50), 1),
        "dial_p99_ms": round(percentile(dial, 99), 1),
        "dial_max_ms": round(dial[-1], 1) if dial else 0.0,
        "transactions_per_next": round(sum(tx) / len(tx), 2) if tx else None,
        "transactions_per_next_max": max(tx) if tx else None,
        "repeated_patients": len(fig.names) - len(set(fig.names)),
        "rss_start_mb": fig.rss_start_mb,
        "rss_end_mb": fig.rss_end_mb,
        "rss_bare_mb": rss_bare,
        "rss_end_vs_bare": ratio(fig.rss_end_mb, rss_bare),
        # The agent's screen (widgets, the screen included, without the tooltip and toast rack
        # the Screen makes) and the same-widgets app's: the same tree, counted by Textual base.
        "screen_widgets": fig.tree["widgets"],
        "bare_widgets": bare["widgets"],
        "screen_widgets_by_base": fig.tree["by_base"],
        "bare_widgets_by_base": bare["by_base"],
        # Lines of the 120x40 screen the bare app draws otherwise than the agent's last patient
        # (names apart): 0 when it shows the same widgets, texts and rows in the same places.
        "bare_lines_differ": bare["lines_differ"],
        # The bare app of the runs before (Header, two Statics, a 3-row DataTable, a scroll of 4
        # Statics, Footer; in this file's process, so SQLAlchemy's core imported): to compare.
        "rss_bare_small_mb": rss_bare_small,
        "rss_end_vs_bare_small": ratio(fig.rss_end_mb, rss_bare_small),
        # The floor under the memory budget: the bare app plus the ORM reads every implementation
        # on SQLAlchemy 2 makes; it alone shows whether 1.5x the bare app can be met at all.
        "rss_bare_store_mb": rss_bare_store,
        "rss_bare_store_vs_bare": ratio(rss_bare_store, rss_bare),
        "rss_end_vs_bare_store": ratio(fig.rss_end_mb, rss_bare_store),
        "other_claims": others.get("claims", 0),
        "other_claims_per_s": None,
        "other_errors": others.get("errors", 0),
        "other_first_error": others.get("first_error", "") or None,
    }
    budget = BUDGET_NEXT_P99[args.backend]
    result["budgets"] = {
        "next_p99_ms": {"limit": budget, "within": within(result["next_p99_ms"], budget)},
        "transactions_per_next": {
            "limit": BUDGET_TRANSACTIONS,
            "within": within(result["transactions_per_next"], BUDGET_TRANSACTIONS),
        },
        "rss_end_vs_bare": {
            "limit": BUDGET_RSS,
            "within": within(result["rss_end_vs_bare"], BUDGET_RSS),
        },
    }
    result.pop("other_claims_per_s")

    def budget_line(key: str, text: str) -> str:
        verdict = result["budgets"][key]["within"]
        return f"{text}  {'within' if verdict else 'OVER' if verdict is False else '-'}"

    print_table(
        f"next patient and dial — {args.backend}, {args.patients:,} patients "
        f"({queued:,} queued), {args.claimers} other claimers, {args.presses} presses",
        ("measure", "p50", "p99", "max", "budget"),
        [
            [
                "r → patient drawn (ms)",
                fmt(result["next_p50_ms"]),
                fmt(result["next_p99_ms"]),
                fmt(result["next_max_ms"]),
                budget_line("next_p99_ms", f"p99 <= {budget:.0f}"),
            ],
            [
                "  floor: bare app, bare dequeue + read",
                fmt(result["floor_next_p50_ms"]),
                fmt(result["floor_next_p99_ms"]),
                fmt(floor_ms[-1] if floor_ms else None),
                f"p99 {fmt(result['next_p99_vs_floor'], 2)}x the floor's",
            ],
            [
                "  of it, the event loop's CPU (ms)",
                fmt(result["next_loop_cpu_p50_ms"]),
                fmt(result["next_loop_cpu_p99_ms"]),
                fmt(cpu[-1] if cpu else None),
                "",
            ],
            [
                f"d → INVITE at the peer (ms, {len(dial)} calls)",
                fmt(result["dial_p50_ms"]),
                fmt(result["dial_p99_ms"]),
                fmt(result["dial_max_ms"]),
                "",
            ],
            [
                "transactions per next (mean, max)",
                fmt(result["transactions_per_next"], 2),
                "",
                result["transactions_per_next_max"],
                budget_line("transactions_per_next", f"mean <= {BUDGET_TRANSACTIONS:.0f}"),
            ],
            [
                "RSS MiB: start, end / bare (same widgets)",
                fmt(fig.rss_start_mb),
                fmt(fig.rss_end_mb),
                fmt(rss_bare),
                budget_line("rss_end_vs_bare", f"end <= {BUDGET_RSS}x bare"),
            ],
            [
                f"  widgets: agent's screen {fig.tree['widgets']}, bare {bare['widgets']}",
                "",
                "",
                "",
                ("the same tree" if fig.tree["by_base"] == bare["by_base"] else "NOT the same")
                + f", {bare['lines_differ']} lines drawn otherwise",
            ],
            [
                "RSS MiB: small bare app (runs before)",
                fmt(rss_bare_small),
                "",
                "",
                f"end {fmt(result['rss_end_vs_bare_small'], 2)}x it",
            ],
            [
                "RSS MiB: same widgets + ORM reads (floor)",
                fmt(rss_bare_store),
                f"{fmt(result['rss_bare_store_vs_bare'], 2)}x",
                "",
                f"end {fmt(result['rss_end_vs_bare_store'], 2)}x it",
            ],
        ],
    )
    print(
        f"end vs bare {fmt(result['rss_end_vs_bare'], 2)}x; patients not dialable (no number "
        f"callable now) {fig.not_dialable}; the same patient twice {result['repeated_patients']}; "
        f"other consoles' claims {result['other_claims']:,} (errors {result['other_errors']}); "
        f"presses whose claim found nobody callable (then a 10 s wait) {fig.found_nobody}"
        + (f" — the first said: {fig.found_nobody_why}" if fig.found_nobody_why else "")
        + (f"; world built in {built_s:.0f} s" if built_s else "")
    )
    if result["other_first_error"]:
        print(f"first error of the other consoles: {result['other_first_error']}", file=sys.stderr)
    if args.json:
        emit_json(result)
    return 0 if result["repeated_patients"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
