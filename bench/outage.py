"""Consoles working through a real PostgreSQL outage: nothing lost, nothing doubled, and how long
the consoles take to work again.

```
.venv/bin/python bench/outage.py --seconds 60 [--consoles 3] [--mode fast|immediate] [--json]
```

Starts a PostgreSQL server of its own (tests/pg_server.py: a temporary folder, a free loopback
port, fsync=off — a throwaway server, never a deployment's settings), seeds a pharmacy with
patients and agents, and runs K agents' consoles (the real app under Textual's Pilot, headless, one
process, each console with its own engine and connection pool) working as fast as they can: Ready,
dial by hand, no answer or connected, the wrap-up typed and saved. After `--before` seconds the
server is stopped (`pg_ctl stop -m fast`, or `immediate` as a crash) for `--seconds` — as soon as
every console has a typed wrap-up in hand, which it saves once the server is down — while the
consoles press on (a refused claim, dial check or save is tried again every `--retry` seconds, as an
agent would), then started again on the same port; after `--after` seconds the consoles finish the
wrap-up in hand and stop. The lease is `--lease-seconds` (default 30, the least the config allows),
so a 60 s outage outlasts two leases and six heartbeats.

Prints what was typed and stored (exactly once, late, lost, doubled), the refused tries, and the
recovery: seconds from the server accepting connections again to each console's first stored
wrap-up, and the longest a typed wrap-up waited to land.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import emit_json, fmt, log, print_table  # sets sys.path to the repository
from sqlalchemy import select

PARK_GUARD_SECONDS = 60  # at most this long for every console to have a wrap-up in hand
NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas: every pharmacy open


def seed_patients(session: Any, count: int) -> None:
    """Synthetic patients of TX1, each with one chronic drug running out in 1 to 3 days, and
    their queues built (as tests/world.py makes them, past its 30)."""
    from datetime import date, timedelta

    from queues.building.build import build_queues
    from queues.store.models import Fill, Patient, Phone, Prescription

    today = NOW.date()
    for i in range(count):
        patient = Patient(
            pharmacy_id=1,
            mrn=f"B{i:05d}",
            first_name="Pat",
            last_name=f"Bench{i:05d}",
            birth_date=date(1950, 1, 1) + timedelta(days=i),
            language="en",
            zip_code="75201",
            state="TX",
        )
        session.add(patient)
        session.flush()
        session.add(Phone(patient_id=patient.id, number=f"+1214556{i:04d}", kind="mobile", rank=0))
        rx = Prescription(
            patient_id=patient.id,
            drug_name="Lisinopril 10 mg tablet",
            ingredient="lisinopril",
            pqa_class="RASA",
            chronic=True,
            refills_left=2,
        )
        session.add(rx)
        session.flush()
        second = today + timedelta(days=1 + i % 3 - 30)
        for when in (second - timedelta(days=32), second):
            session.add(Fill(prescription_id=rx.id, fill_date=when, days_supply=30, quantity=30))
    build_queues(session, NOW)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=60.0, help="how long the server is down")
    p.add_argument("--consoles", type=int, default=3)
    p.add_argument("--patients", type=int, default=400)
    p.add_argument("--before", type=float, default=20.0, help="seconds of shift before the stop")
    p.add_argument("--after", type=float, default=30.0, help="seconds of shift after the start")
    p.add_argument("--retry", type=float, default=1.0, help="seconds between an agent's tries")
    p.add_argument("--lease-seconds", type=int, default=30)
    p.add_argument("--mode", choices=("fast", "immediate"), default="fast")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args()
    if args.seconds <= 0 or args.consoles < 1 or args.lease_seconds < 30:
        p.error("--seconds > 0, --consoles >= 1 and --lease-seconds >= 30 (the config's least)")
    return args


@dataclasses.dataclass
class Tally:
    typed: dict[str, str] = dataclasses.field(default_factory=dict)  # notes → disposition
    first_save_try: dict[str, float] = dataclasses.field(default_factory=dict)
    landed: dict[str, float] = dataclasses.field(default_factory=dict)
    typed_while_down: set[str] = dataclasses.field(default_factory=set)
    refused: Counter[str] = dataclasses.field(default_factory=Counter)
    first_landed_after_start: dict[str, float] = dataclasses.field(default_factory=dict)


class Outage:
    """When the server went down and came back (perf_counter seconds)."""

    def __init__(self) -> None:
        self.down_at: float | None = None
        self.up_at: float | None = None
        # Set a little before the stop: each agent holds its next typed wrap-up unsaved until
        # the server is down, so every console has one in hand through the outage.
        self.park = asyncio.Event()
        self.parked: set[str] = set()
        self.stopped = asyncio.Event()

    @property
    def down(self) -> bool:
        return self.down_at is not None and self.up_at is None


async def agent(
    name: str, app: Any, pilot: Any, tally: Tally, outage: Outage, stop: asyncio.Event, pause: float
) -> None:
    """One agent working as fast as the console lets them, trying again when refused."""
    from textual.widgets import TextArea

    from console.screens.workspace import WorkspaceScreen
    from console.screens.wrap_up import WrapUpScreen
    from tests.e2e.helpers import press, settle

    n = 0
    while not stop.is_set():
        await press(pilot, "r")
        screen = app.screen
        if not isinstance(screen, WorkspaceScreen) or screen.offer is None:
            tally.refused["claim"] += 1
            if outage.up_at is not None:
                tally.refused["claim after the start"] += 1
            await pilot.pause(pause)
            continue
        connected = n % 2 == 0
        while screen.phase == "preview":  # the dial-time check needs the database
            await press(pilot, "d")
            if screen.phase == "preview":
                tally.refused["dial check"] += 1
                await pilot.pause(pause)
        await press(pilot, "c" if connected else "a", "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen), type(wrap).__name__
        notes = f"{name} call {n}"
        disposition = "completed" if connected else "no_answer"
        wrap.query_one("#notes", TextArea).text = notes
        if outage.down:
            tally.typed_while_down.add(notes)
        while not wrap.options:  # opened while the server was down: it reads them again itself
            await pilot.pause(pause)
        listed = wrap.query_one("#disposition")
        listed.highlighted = list(wrap.options).index(disposition)  # type: ignore[attr-defined]
        listed.focus()
        await pilot.press("enter")
        await settle(pilot)
        tally.typed[notes] = disposition
        if outage.park.is_set() and outage.down_at is None:
            outage.parked.add(name)
            await outage.stopped.wait()
        tally.first_save_try[notes] = time.perf_counter()
        while True:
            await press(pilot, "ctrl+s")
            if app.screen is not wrap:
                break
            tally.refused["save"] += 1
            if outage.up_at is not None:  # the server is back, the console not yet
                tally.refused["save after the start"] += 1
            await pilot.pause(pause)
        now = time.perf_counter()
        tally.landed[notes] = now
        if outage.up_at is not None and name not in tally.first_landed_after_start:
            tally.first_landed_after_start[name] = now - outage.up_at
        n += 1


async def shift(args: argparse.Namespace) -> dict[str, Any]:
    from console.app import OutreachApp
    from console.drafts import DraftStore
    from console.services.container import Services
    from console.services.store import open_store
    from queues.audit import verify_chain
    from queues.auth import add_user
    from queues.identity import database_id
    from queues.store.db import transaction
    from queues.store.models import Attempt
    from tests.e2e.helpers import login
    from tests.pg_server import OwnPostgres, pg_bin
    from tests.world import PASSWORD, make_world

    found = pg_bin()
    if found is None:
        raise SystemExit("error: PostgreSQL's initdb and pg_ctl are not installed")
    server = OwnPostgres(found)
    tmp = Path(tempfile.mkdtemp(prefix="outage-bench-"))
    try:
        server.start()
        log(f"seeding {args.patients} patients, {args.consoles} agents")
        w = make_world(tmp, server.url, NOW, {})
        with transaction(w.store.sessions) as s:
            seed_patients(s, args.patients)
        names = [f"agent{k}" for k in range(args.consoles)]
        with transaction(w.store.sessions) as s:
            for name in names:
                add_user(s, name, PASSWORD, "agent", ["TX1"])
        settings = dataclasses.replace(
            w.store.settings,
            queue=dataclasses.replace(w.store.settings.queue, lease_seconds=args.lease_seconds),
        )
        tally, outage, stop = Tally(), Outage(), asyncio.Event()
        apps = [
            OutreachApp(Services(open_store(settings, migrate=False, clock=w.store.clock)))
            for _ in names
        ]
        async with AsyncExitStack() as consoles:
            pilots = [
                await consoles.enter_async_context(app.run_test(size=(120, 40))) for app in apps
            ]
            for name, pilot in zip(names, pilots, strict=True):
                await login(pilot, name)
            loops = [
                asyncio.create_task(agent(n, a, p, tally, outage, stop, args.retry))
                for n, a, p in zip(names, apps, pilots, strict=True)
            ]
            await asyncio.sleep(args.before)
            outage.park.set()
            for _ in range(int(PARK_GUARD_SECONDS * 10)):  # each with a wrap-up in hand
                if len(outage.parked) == len(names):
                    break
                await asyncio.sleep(0.1)
            before = len(tally.landed)
            log(f"stopping PostgreSQL ({args.mode}) for {args.seconds:g} s")
            await asyncio.to_thread(server.stop, args.mode)
            outage.down_at = time.perf_counter()
            outage.stopped.set()
            await asyncio.sleep(args.seconds)
            during = len(tally.landed) - before
            await asyncio.to_thread(server.start)
            outage.up_at = time.perf_counter()
            log("PostgreSQL is back")
            await asyncio.sleep(args.after)
            stop.set()
            await asyncio.gather(*loops)

        with w.store.sessions() as s:
            stored = s.execute(select(Attempt.notes, Attempt.late)).all()
            chains = verify_chain(s)
        counts = Counter(notes for notes, _ in stored)
        waits = sorted(tally.landed[n] - tally.first_save_try[n] for n in tally.landed)
        with w.store.sessions() as s:
            here = database_id(s)  # drafts are kept per database (console/drafts.py)
        drafts = sum(
            len(DraftStore(Path(settings.ui.drafts_path), here, n).drafts()) for n in names
        )
        recovery = sorted(tally.first_landed_after_start.values())
        assert outage.down_at is not None and outage.up_at is not None
        return {
            "consoles": args.consoles,
            "outage_s": round(outage.up_at - outage.down_at, 1),
            "mode": args.mode,
            "lease_s": args.lease_seconds,
            "typed": len(tally.typed),
            "in_hand_at_stop": len(outage.parked),
            "typed_while_down": len(tally.typed_while_down),
            "stored_before_stop": before,
            "stored_during_stop": during,
            "stored": len(stored),
            "stored_once": sum(1 for n in tally.typed if counts[n] == 1),
            "lost": sum(1 for n in tally.typed if counts[n] == 0),
            "doubled": sum(1 for k in counts.values() if k > 1),
            "stored_not_typed": sum(1 for n in counts if n not in tally.typed),
            "late": sum(1 for _, late in stored if late),
            "refused_claims": tally.refused["claim"],
            "refused_dial_checks": tally.refused["dial check"],
            "refused_saves": tally.refused["save"],
            "refused_saves_after_start": tally.refused["save after the start"],
            "refused_claims_after_start": tally.refused["claim after the start"],
            "recovery_first_save_s": [round(r, 2) for r in recovery],
            "recovery_first_save_s_median": round(statistics.median(recovery), 2)
            if recovery
            else None,
            "recovery_first_save_s_max": round(recovery[-1], 2) if recovery else None,
            "longest_wait_to_land_s": round(waits[-1], 1) if waits else None,
            "drafts_left": drafts,
            "audit_chains_intact": chains.intact,
        }
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)  # the drafts and the log of the run


def main() -> None:
    args = parse()
    result = asyncio.run(shift(args))
    rows = [(k, fmt(v, 2) if isinstance(v, float) else v) for k, v in result.items()]
    print_table(
        f"PostgreSQL stopped ({result['mode']}) for {result['outage_s']} s under "
        f"{result['consoles']} consoles (fsync=off, a throwaway server)",
        ("figure", "value"),
        rows,
    )
    if args.json:
        emit_json(result)
    bad = result["lost"] or result["doubled"] or result["stored_not_typed"]
    sys.exit(1 if bad or not result["audit_chains_intact"] else 0)


if __name__ == "__main__":
    main()
