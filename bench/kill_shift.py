"""kill -9 at random points of a scripted shift: nothing typed is lost, nothing saved is doubled.

A console (the real app under Pilot, headless, in its own process: `--child`) works a shift as an
agent would — sign in, `r` next patient, `d` dial by hand (manual-dial mode: no `[sip]` server),
`c` connected, `1` a step of the script, `w` wrap-up, choose the disposition, type the callback
time (when the disposition asks for one) and the notes key by key, `ctrl+s` — and writes one line
to its stdout (a pipe, unbuffered) for each step it begins and each it has completed:

    BEGIN <phase> <step>          phase: claiming, dialing, typing, saving (signin at start)
    DONE <step>                   the key handled and its effect visible
    TYPED <uid> <field>           the keys of a field pressed (not yet known to be on disk)
    FIELD <uid> <field> <json>    the field as typed is in the draft journal on disk
    SAVED <uid> <patient>         ctrl+s answered: the wrap-up closed, the attempt stored
    RESTORED <json>|none          at sign-in: the wrap-up the console reopened, field by field

The parent kills it with SIGKILL at a seeded random moment (after the k-th step began, plus a
random delay), checks the database (no patient held by the dead console but the one it was
working, and not past one lease), starts the console again — which signs in and reports what
came back — and carries the shift on. After the last kill a console finishes the open wrap-up
and the parent checks every call: every field reported in the journal before a kill came back
on the form (or was stored by a save that completed), every saved or journaled wrap-up is in the
database exactly once (attempts by draft uid, and by patient), nothing stored differs from what
was typed, no patient is left held.

    python bench/kill_shift.py --kills 200 --seed 7 [--backend sqlite|postgres] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/kill_shift.py` from anywhere
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from console.config import DatabaseSettings, LogSettings, Settings, UiSettings  # noqa: E402
from console.services.store import Store, open_store  # noqa: E402
from queues.building.build import build_queues  # noqa: E402
from queues.clock import PracticeClock  # noqa: E402
from queues.store.db import transaction  # noqa: E402
from queues.store.models import (  # noqa: E402
    Attempt,
    Fill,
    Patient,
    Phone,
    Prescription,
    QueueEntry,
    User,
)

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # Wednesday 09:00 in Dallas
PHASES = ("claiming", "dialing", "typing", "saving")
# A forced kill's step in each phase: in typing, the notes (after the disposition is journaled).
FORCED_STEP = {"claiming": "r", "dialing": "d", "typing": "notes", "saving": "ctrl+s"}
CALLBACK = "2026-12-03 14:30"  # Thursday, inside the patients' calling window
# Only a guard against a console that hangs (the run then fails saying so), never a measure.
GUARD_SECONDS = 300.0
LEASE_SECONDS = 300  # queues.settings.QueueSettings' default, which the world keeps


def intended(patient_id: int) -> dict[str, Any]:
    """What the scripted agent types for a patient (no health information: an id only)."""
    callback = patient_id % 3 == 1
    return {
        "disposition": "callback_requested" if callback else "completed",
        "callback_text": CALLBACK if callback else "",
        "notes": f"ok, ref {patient_id}",
    }


def settings(tmp: Path, url: str) -> Settings:
    """What tests.world.make_world gives the app for the same folder and database."""
    return Settings(
        database=DatabaseSettings(url=url),
        ui=UiSettings(drafts_path=str(tmp / "drafts"), idle_lock_minutes=15),
        log=LogSettings(path=str(tmp / "outreach.log")),
    )


def build_world(tmp: Path, url: str, patients: int) -> Store:
    """The tests' world (Lone Star Pharmacy, ana, ben, sue) with `patients` synthetic patients,
    each with a chronic drug running out within the week, queued."""
    from tests.world import make_world

    world = make_world(tmp, url, NOW, {})
    with transaction(world.store.sessions) as s:
        pharmacy_id = 1
        for i in range(patients):
            patient = Patient(
                pharmacy_id=pharmacy_id,
                mrn=f"K{i:05d}",
                first_name="Pat",
                last_name=f"Kill{i:05d}",
                birth_date=date(1950, 1, 1) + timedelta(days=37 * i),
                language="en",
                zip_code="75201",
                state="TX",
            )
            s.add(patient)
            s.flush()
            s.add(Phone(patient_id=patient.id, number=f"+1214556{i:04d}", kind="mobile", rank=0))
            rx = Prescription(
                patient_id=patient.id,
                drug_name="Lisinopril 10 mg tablet",
                ingredient="lisinopril",
                pqa_class="RASA",
                chronic=True,
                refills_left=2,
            )
            s.add(rx)
            s.flush()
            second = NOW.date() + timedelta(days=1 + i % 5 - 30)
            s.add_all(
                [
                    Fill(
                        prescription_id=rx.id,
                        fill_date=second - timedelta(days=32),
                        days_supply=30,
                        quantity=30,
                    ),
                    Fill(prescription_id=rx.id, fill_date=second, days_supply=30, quantity=30),
                ]
            )
        build_queues(s, NOW)
    return world.store


# -- the console: a child process ---------------------------------------------------------------


_OUT: list[Connection] = []  # the pipe to the parent, in a console process


def emit(*words: str) -> None:
    """One line to the parent: one write to a pipe (small: atomic), so once written it survives
    the kill."""
    _OUT[0].send_bytes(" ".join(words).encode())


def console_process(out: Connection, tmp: str, url: str, start: str, finish: bool) -> None:
    """A console's process (forked from a server that has imported the app once)."""
    _OUT.append(out)
    asyncio.run(child(Path(tmp), url, datetime.fromisoformat(start), finish))
    out.close()


async def child(tmp: Path, url: str, start: datetime, finish: bool) -> None:
    from textual.pilot import Pilot
    from textual.widgets import Checkbox, Input, TextArea

    from console.app import OutreachApp
    from console.drafts import DraftStore
    from console.screens.workspace import WorkspaceScreen
    from console.screens.wrap_up import WrapUpScreen
    from console.services.container import Services
    from queues.identity import database_id
    from tests.e2e.helpers import choose_disposition, login, press, settle, type_keys, until

    # The parent built the schema: no migration check at each start (alembic reads every file).
    store = open_store(settings(tmp, url), migrate=False, clock=PracticeClock(start))
    app = OutreachApp(Services(store))
    with store.sessions() as session:  # the journal's folder is the database's (console/drafts.py)
        drafts = DraftStore(tmp / "drafts", database_id(session), "ana")

    def form(wrap: WrapUpScreen) -> dict[str, Any]:
        return {
            "uid": wrap.draft.uid,
            "patient": wrap.patient.id,
            "disposition": wrap.chosen or "",
            "notes": wrap.query_one("#notes", TextArea).text,
            "callback_text": wrap.query_one("#callback-at", Input).value,
            "mine": wrap.query_one("#callback-mine", Checkbox).value,
        }

    def journaled(uid: str, name: str, value: str) -> bool:
        draft = drafts.load(uid)
        if draft is None or draft.form is None:
            return False
        on_disk = {
            "disposition": draft.outcome.disposition,
            "notes": draft.outcome.notes,
            "callback_text": draft.form.callback_text,
        }
        return on_disk[name] == value

    async def type_field(pilot: Pilot[Any], wrap: WrapUpScreen, name: str, value: str) -> None:
        uid = wrap.draft.uid
        if name == "disposition":
            await choose_disposition(pilot, value)
        else:
            wrap.query_one("#callback-at" if name == "callback_text" else "#notes").focus()
            await type_keys(pilot, value)
        emit("TYPED", uid, name)
        # Only the journal's own writes (debounced on its thread): no flush, no Save.
        while not journaled(uid, name, value):
            await pilot.pause(0.02)
        emit("FIELD", uid, name, json.dumps(value))

    async def save(pilot: Pilot[Any], wrap: WrapUpScreen) -> None:
        emit("BEGIN", "saving", "ctrl+s")
        await press(pilot, "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, WorkspaceScreen), "the save")
        emit("SAVED", wrap.draft.uid, str(wrap.patient.id))

    async def carry_on(pilot: Pilot[Any], wrap: WrapUpScreen) -> None:
        """A wrap-up the console reopened: say what came back, complete it, save it."""
        await settle(pilot)
        emit("RESTORED", json.dumps(form(wrap)))
        want = intended(wrap.patient.id)
        if wrap.chosen != want["disposition"]:
            await choose_disposition(pilot, want["disposition"])
            await settle(pilot)
        if want["callback_text"]:
            wrap.query_one("#callback-at", Input).value = want["callback_text"]
        wrap.query_one("#notes", TextArea).text = want["notes"]
        await settle(pilot)
        await save(pilot, wrap)

    async with app.run_test(size=(120, 40)) as pilot:
        emit("BEGIN", "signin", "login")
        await login(pilot, "ana")
        if drafts.drafts():  # a wrap-up kept: it reopens (or is seen stored and goes)
            await until(
                pilot,
                lambda: isinstance(app.screen, WrapUpScreen) or not drafts.drafts(),
                "the kept wrap-up to reopen",
            )
        restored = isinstance(app.screen, WrapUpScreen)
        if isinstance(app.screen, WrapUpScreen):
            await carry_on(pilot, app.screen)
        else:
            emit("RESTORED", "none")
        emit("DONE", "login")
        # The last console of a run finishes the call the killed one held (or one more).
        for _ in iter(int, 1) if not finish else range(0 if restored else 1):
            ws = app.screen
            assert isinstance(ws, WorkspaceScreen), type(ws)
            emit("BEGIN", "claiming", "r")
            await press(pilot, "r")
            if isinstance(app.screen, WrapUpScreen):  # a held claim with its draft: reopened
                await carry_on(pilot, app.screen)
                continue
            if ws.offer is None:
                emit("EMPTY")
                return
            patient = ws.offer.claim.patient_id
            emit("DONE", "r", str(patient))
            for key, phase in (("d", "dialing"), ("c", "connected"), ("1", None)):
                emit("BEGIN", "dialing", key)
                await press(pilot, key)
                assert phase is None or ws.phase == phase, (key, ws.phase)
                emit("DONE", key)
            emit("BEGIN", "typing", "w")
            await press(pilot, "w")
            wrap = app.screen
            assert isinstance(wrap, WrapUpScreen), type(wrap)
            emit("DONE", "w", wrap.draft.uid)
            want = intended(patient)
            for name in ("disposition", "callback_text", "notes"):
                if want[name]:
                    emit("BEGIN", "typing", name)
                    await type_field(pilot, wrap, name, want[name])
                    emit("DONE", name)
            await save(pilot, wrap)
            emit("DONE", "ctrl+s")


# -- the parent: kills, restarts, checks --------------------------------------------------------


@dataclass
class Tally:
    kills: int = 0
    kills_by_phase: Counter[str] = field(default_factory=Counter)
    fields_expected: int = 0  # reported in the journal before a kill, not yet saved
    fields_restored: int = 0  # back on the form at sign-in, or stored by a save that completed
    fields_lost: list[str] = field(default_factory=list)
    in_debounce: int = 0  # kills between a field's keys and its journal write (not promised)
    in_debounce_kept: int = 0  # of those, the field came back whole anyway
    saves_reported: int = 0
    wrap_ups: int = 0  # every wrap-up saved or journaled
    stored_once: int = 0
    doubled: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    held_wrongly: list[str] = field(default_factory=list)
    console_starts: int = 0
    seconds: float = 0.0


@dataclass
class Shift:
    """What the consoles reported, across every kill."""

    journaled: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> field -> value
    patient_of: dict[str, int] = field(default_factory=dict)
    saved: set[str] = field(default_factory=set)
    typed: dict[str, str] = field(default_factory=dict)  # uid -> field typed, not yet journaled


@dataclass(frozen=True)
class Target:
    """Kill after the `step`-th step begins of this console's run (or the first step that is
    `at`, "<phase> <step>"), `delay` seconds later."""

    step: int
    delay: float
    at: str | None = None


def plan(kills: int, seed: int, forced: bool, max_step: int = 12) -> list[Target]:
    """`kills` random kill points (after one of a console's first `max_step` steps, a cycle being
    about 9); with `forced`, one more in each phase, shuffled among them."""
    rng = random.Random(seed)
    targets = [Target(rng.randint(1, max_step), rng.uniform(0, 0.4)) for _ in range(kills)]
    if forced:  # early in the step, so the kill lands in it however loaded the machine is
        targets += [Target(0, rng.uniform(0, 0.05), f"{p} {FORCED_STEP[p]}") for p in PHASES]
    rng.shuffle(targets)
    return targets


# What a console process imports (screens are imported when first shown): once, in the server.
PRELOAD = [
    "bench.kill_shift",
    "console.app",
    "console.services.container",
    "console.screens.login",
    "console.screens.workspace",
    "console.screens.wrap_up",
    "console.screens.lock",
    "textual.pilot",
    "tests.e2e.helpers",
]


def forkserver() -> BaseContext:
    """Console processes are forked from one server that imported the app once (an import
    costs seconds on a loaded machine; a kill -9 of a forked process is the same kill)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class Console:
    """One console process and the lines it wrote."""

    def __init__(
        self, ctx: BaseContext, tmp: Path, url: str, start: datetime, finish: bool = False
    ) -> None:
        self.conn, out = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(  # type: ignore[attr-defined]
            target=console_process,
            args=(out, str(tmp), url, start.isoformat(), finish),
            name="kill-shift-console",
        )
        self.proc.start()
        out.close()
        self.lines: list[str] = []

    def next_line(self, timeout: float = GUARD_SECONDS) -> str | None:
        """The next line, or None at its end."""
        try:
            if not self.conn.poll(timeout):
                self.proc.kill()
                raise RuntimeError(f"the console wrote nothing for {timeout:.0f} s")
            text = self.conn.recv_bytes().decode()
        except EOFError:
            return None
        self.lines.append(text)
        return text

    def kill_at(self, target: Target) -> None:
        begun = 0
        while (line := self.next_line()) is not None:
            if not line.startswith("BEGIN ") or line.startswith("BEGIN signin"):
                continue
            begun += 1
            if (target.at is None and begun >= target.step) or line == f"BEGIN {target.at}":
                time.sleep(target.delay)  # the kill point itself, not a synchronization
                os.kill(self.proc.pid, signal.SIGKILL)
                break
        self.drain()

    def drain(self) -> None:
        while self.next_line() is not None:
            pass
        self.proc.join()
        self.conn.close()

    @property
    def returncode(self) -> int | None:
        code: int | None = self.proc.exitcode
        return code


def _phase(lines: list[str]) -> str:
    begun = [ln.split()[1] for ln in lines if ln.startswith("BEGIN ")]
    return begun[-1] if begun else "signin"


def _stored(store: Store, uid: str) -> list[Attempt]:
    with store.sessions() as s:
        return list(s.scalars(select(Attempt).where(Attempt.uid == uid)))


def _check_holds(store: Store, now: datetime, tally: Tally, when: str, most: int) -> None:
    with store.sessions() as s:
        ana = s.scalars(select(User.id).where(User.username == "ana")).one()
        held = list(s.scalars(select(QueueEntry).where(QueueEntry.holder_id == ana)))
    if len(held) > most:
        tally.held_wrongly.append(f"{when}: {len(held)} patients held")
    for entry in held:
        expires = entry.lease_expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires is not None and expires > now + timedelta(seconds=LEASE_SECONDS + 5):
            tally.held_wrongly.append(f"{when}: patient {entry.patient_id} held past one lease")


def _take(
    lines: list[str], shift: Shift, tally: Tally, store: Store, restored_checked: bool
) -> None:
    """Fold one console's lines into the shift; the first RESTORED line is checked against what
    the previous console had journaled and not saved."""
    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "RESTORED" and not restored_checked:
            restored_checked = True
            _check_restored(rest, shift, tally, store)
        elif word == "TYPED":
            uid, name = rest.split()
            shift.typed[uid] = name
        elif word == "FIELD":
            uid, name, value = rest.split(" ", 2)
            shift.journaled.setdefault(uid, {})[name] = json.loads(value)
            shift.typed.pop(uid, None)
        elif word == "DONE" and rest.startswith("w "):
            uid = rest.split()[1]
            shift.journaled.setdefault(uid, {})
            shift.typed.pop(uid, None)
        elif word == "SAVED":
            uid, patient = rest.split()
            shift.saved.add(uid)
            shift.patient_of[uid] = int(patient)
            shift.typed.pop(uid, None)
            tally.saves_reported += 1


def _check_restored(rest: str, shift: Shift, tally: Tally, store: Store) -> None:
    back: dict[str, Any] = {} if rest == "none" else json.loads(rest)
    for uid, fields in shift.journaled.items():
        if uid in shift.saved or (not fields and uid not in shift.typed):
            continue
        in_db = _stored(store, uid)
        for name, value in fields.items():
            tally.fields_expected += 1
            on_form = back.get("uid") == uid and back.get(name) == value
            if on_form or (in_db and _stored_value(in_db[0], name) == value):
                tally.fields_restored += 1
            else:
                tally.fields_lost.append(f"{uid} {name}: typed {value!r}, back {back.get(name)!r}")
        typing = shift.typed.get(uid)
        if typing is not None:  # killed inside the debounce window of this field
            tally.in_debounce += 1
            patient = back.get("patient") if back.get("uid") == uid else None
            if patient is not None and back.get(typing) == intended(patient)[typing]:
                tally.in_debounce_kept += 1
        if in_db:  # stored by a save the kill did not let report: settled
            shift.saved.add(uid)
    shift.typed.clear()


def _stored_value(attempt: Attempt, name: str) -> Any:
    if name == "callback_text":
        return CALLBACK  # stored as a time; the form's text is checked on the form
    return getattr(attempt, name)


def _final_checks(store: Store, shift: Shift, tally: Tally) -> None:
    with store.sessions() as s:
        attempts = list(s.scalars(select(Attempt)))
    by_uid = Counter(a.uid for a in attempts)
    by_patient = Counter(a.patient_id for a in attempts)
    wanted = set(shift.saved) | {u for u, f in shift.journaled.items() if f}
    tally.wrap_ups = len(wanted)
    for uid in sorted(wanted):
        n = by_uid.get(uid, 0)
        if n == 1:
            tally.stored_once += 1
        elif n == 0:
            tally.lost.append(uid)
        else:
            tally.doubled.append(f"{uid} stored {n} times")
    tally.doubled += [f"patient {p}: {n} attempts" for p, n in by_patient.items() if n > 1]
    for a in attempts:
        want = intended(a.patient_id)
        if (a.disposition, a.notes) != (want["disposition"], want["notes"]):
            tally.differs.append(f"{a.uid}: {a.disposition!r} {a.notes!r}")


def run(
    url: str,
    tmp: Path,
    kills: int,
    seed: int,
    forced: bool = False,
    progress: Callable[[str], None] | None = None,
    max_step: int = 12,
) -> Tally:
    tally = Tally()
    t0 = time.monotonic()
    targets = plan(kills, seed, forced, max_step)
    store = build_world(tmp, url, patients=2 * len(targets) + 10)
    shift = Shift()

    def clock() -> datetime:  # the consoles' practice clock carries on across restarts
        return NOW + timedelta(seconds=time.monotonic() - t0)

    ctx = forkserver()
    for n, target in enumerate(targets):
        if progress is not None and n and n % 10 == 0:
            progress(f"{n} kills, {tally.console_starts} console starts")
        console = Console(ctx, tmp, url, clock())
        tally.console_starts += 1
        try:
            console.kill_at(target)
        finally:
            if console.proc.is_alive():  # the run failed: no console is left behind
                console.proc.kill()
        if console.returncode != -signal.SIGKILL:
            raise RuntimeError(
                f"console {n} ended by itself ({console.returncode}): its stderr above; "
                f"its last lines: {console.lines[-5:]}"
            )
        tally.kills += 1
        tally.kills_by_phase[_phase(console.lines)] += 1
        _take(console.lines, shift, tally, store, restored_checked=n == 0)
        _check_holds(store, clock(), tally, f"kill {n}", most=1)
    last = Console(ctx, tmp, url, clock(), finish=True)
    tally.console_starts += 1
    last.drain()
    if last.returncode != 0:
        raise RuntimeError(f"the last console failed ({last.returncode}): its stderr above")
    _take(last.lines, shift, tally, store, restored_checked=False)
    _check_holds(store, clock(), tally, "the end", most=0)
    _final_checks(store, shift, tally)
    tally.seconds = time.monotonic() - t0
    store.engine.dispose()
    return tally


def table(t: Tally, backend: str, seed: int) -> str:
    rows = [
        f"kill -9 during a scripted shift ({backend}, seed {seed}): {t.kills} kills, "
        f"{t.console_starts} console starts, {t.seconds:.0f} s",
        "",
        f"{'kills by phase':<44}"
        + "  ".join(f"{p} {t.kills_by_phase.get(p, 0)}" for p in ("signin", *PHASES)),
        f"{'fields journaled before a kill: restored':<44}{t.fields_restored} / {t.fields_expected}",
        f"{'kills inside a field debounce window (kept)':<44}{t.in_debounce} ({t.in_debounce_kept})",
        f"{'saves reported before a kill':<44}{t.saves_reported}",
        f"{'wrap-ups (saved or journaled)':<44}{t.wrap_ups}",
        f"{'  stored exactly once':<44}{t.stored_once}",
        f"{'  doubled':<44}{len(t.doubled)}",
        f"{'  lost':<44}{len(t.lost)}",
        f"{'  stored unlike what was typed':<44}{len(t.differs)}",
        f"{'patients held wrongly (dead console, past lease)':<44}{len(t.held_wrongly)}",
    ]
    for label, items in (
        ("lost field", t.fields_lost),
        ("doubled", t.doubled),
        ("lost", t.lost),
        ("differs", t.differs),
        ("held", t.held_wrongly),
    ):
        rows += [f"  {label}: {item}" for item in items[:10]]
    return "\n".join(rows)


@contextmanager
def _database(backend: str, server: str | None) -> Iterator[str]:
    from bench._common import scratch_database

    with scratch_database(backend, server) as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    from bench._common import log, server_url

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database", metavar="URL", help="PostgreSQL server (postgres backend)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills: at least 1")
    server = server_url(args) if args.backend == "postgres" else None
    log(f"{args.kills} kills, seed {args.seed}, {args.backend}")
    with _database(args.backend, server) as url, tempfile.TemporaryDirectory() as tmp:
        tally = run(url, Path(tmp), args.kills, args.seed, progress=log)
    print(table(tally, args.backend, args.seed))
    if args.json:
        out = asdict(tally)
        out["kills_by_phase"] = dict(tally.kills_by_phase)
        print(json.dumps({"backend": args.backend, "seed": args.seed, **out}))
    bad = tally.fields_lost or tally.doubled or tally.lost or tally.differs or tally.held_wrongly
    return 1 if bad else 0


if __name__ == "__main__":
    # The engine under its own name, so the console processes find `console_process` there.
    from bench.kill_shift import main as engine

    sys.exit(engine())
