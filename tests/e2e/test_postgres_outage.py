"""PostgreSQL stopped mid-shift under three consoles: nothing lost, nothing doubled.

The test starts a PostgreSQL server of its own (tests/pg_server.py) and really stops it with
`pg_ctl stop -m fast` while three agents' consoles (Pilot, one process, each console with its own
engine and connection pool, one practice clock) work a shift on one database: claiming, dialing by
hand, typing wrap-ups and saving them. While it is down two wrap-ups are typed and saved (refused,
kept), saved again, typed further; a console asks for a patient twice; the practice clock moves on
three leases and every console beats its lease heartbeat and presence beat into the void. Then the
server starts again (same port, same data, connections in every pool dead) and the shift goes on.

Checked: every wrap-up typed is stored exactly once with its last notes (one whose claim ran out
during the outage and was taken or swept by another console's claim meanwhile is stored late, as
the call it was; one whose claim is still its own is stored on time), no attempt stored twice, no
draft left on disk, the audit chains verify. `bench/outage.py --seconds 60` does a real 60 s
outage with consoles pressing on throughout and prints the figures.

Needs PostgreSQL's binaries (initdb, pg_ctl): skipped without them, a failure under CI=true.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from textual.pilot import Pilot
from textual.widgets import Static, TextArea

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from console.services.container import Services
from console.services.store import Store, open_store
from queues.audit import verify_chain
from queues.auth import add_user
from queues.clock import PracticeClock
from queues.store.db import transaction
from queues.store.models import Attempt, QueueEntry
from tests.conftest import require_service
from tests.e2e.helpers import choose_disposition, login, press, settle
from tests.pg_server import OwnPostgres, pg_bin
from tests.world import PASSWORD, World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas
AGENTS = ("ana", "ben", "cai")
# Eighteen patients falling due in 1 to 3 days: more than the shift calls.
PATIENTS = {f"Outage{chr(ord('A') + i)}": 1 + i % 3 for i in range(18)}
UNREACHABLE = "the database is unreachable — your work is kept"


@pytest.fixture
def server() -> Iterator[OwnPostgres]:
    found = pg_bin()
    require_service(
        "PostgreSQL's binaries (initdb, pg_ctl)",
        found is not None,
        "apt-get install postgresql (this test starts and stops a server of its own)",
    )
    assert found is not None
    pg = OwnPostgres(found)
    try:
        pg.start()
        yield pg
    finally:
        pg.close()


@dataclasses.dataclass
class Console:
    """One agent's console: the app, its Pilot, and the wrap-ups it typed (notes → disposition)."""

    name: str
    app: OutreachApp
    pilot: Pilot[Any]

    @property
    def workspace(self) -> WorkspaceScreen:
        screen = self.app.screen
        if isinstance(screen, WrapUpScreen):
            screen = self.app.screen_stack[-2]
        assert isinstance(screen, WorkspaceScreen), screen
        return screen

    def notes(self) -> list[str]:
        return [n.message for n in self.app._notifications]


def shift_world(tmp_path: Path, url: str) -> World:
    w = make_world(tmp_path, url, NOW, PATIENTS)
    with transaction(w.store.sessions) as s:
        add_user(s, "cai", PASSWORD, "agent", ["TX1"])
    return w


def console_store(w: World) -> Store:
    """A console's own engine and pool on the same database, on the shift's one practice clock."""
    return open_store(w.store.settings, migrate=False, clock=w.store.clock)


@asynccontextmanager
async def consoles(w: World) -> AsyncIterator[list[Console]]:
    async with AsyncExitStack() as stack:
        out = []
        for name in AGENTS:
            app = OutreachApp(Services(console_store(w)))
            pilot = await stack.enter_async_context(app.run_test(size=(120, 40)))
            await login(pilot, name)
            out.append(Console(name, app, pilot))
        yield out


async def open_wrap_up(c: Console, *, connected: bool) -> WrapUpScreen:
    """r, d, then connected or no answer by hand, then w: the wrap-up of the next patient."""
    await press(c.pilot, "r")
    assert c.workspace.offer is not None, visible_text(c.app)
    await press(c.pilot, "d")
    await press(c.pilot, "c" if connected else "a")
    await press(c.pilot, "w")
    wrap = c.app.screen
    assert isinstance(wrap, WrapUpScreen), visible_text(c.app)
    return wrap


async def type_wrap_up(c: Console, wrap: WrapUpScreen, disposition: str, notes: str) -> None:
    await choose_disposition(c.pilot, disposition)
    wrap.query_one("#notes", TextArea).text = notes
    await settle(c.pilot)


async def save(c: Console) -> bool:
    """ctrl+s on the wrap-up: True once it is stored (back on the workspace)."""
    await press(c.pilot, "ctrl+s")
    return isinstance(c.app.screen, WorkspaceScreen)


async def call_and_save(c: Console, typed: dict[str, str], n: int) -> None:
    connected = n % 2 == 0
    disposition = "completed" if connected else "no_answer"
    notes = f"{c.name} call {n}: {disposition}"
    wrap = await open_wrap_up(c, connected=connected)
    await type_wrap_up(c, wrap, disposition, notes)
    typed[notes] = disposition
    assert await save(c), visible_text(c.app)


async def test_postgres_stopped_mid_shift_loses_and_doubles_nothing(
    tmp_path: Path, server: OwnPostgres
) -> None:
    w = shift_world(tmp_path, server.url)
    clock = w.store.clock
    assert isinstance(clock, PracticeClock)
    lease = w.store.settings.queue.lease_seconds
    typed: dict[str, str] = {}  # every wrap-up typed: its last notes → its disposition
    async with consoles(w) as (ana, ben, cai):
        # The shift under way: two calls each, saved.
        for n in range(2):
            for c in (ana, ben, cai):
                await call_and_save(c, typed, n)

        # Ana and Ben are in their wrap-ups, Cai between patients, when the server stops.
        wraps = {}
        for c, disposition in ((ana, "completed"), (ben, "no_answer")):
            wraps[c.name] = await open_wrap_up(c, connected=disposition == "completed")
            await type_wrap_up(c, wraps[c.name], disposition, f"{c.name} typed before the outage")
        server.stop("fast")

        # Saves refused, kept on screen; typed further; saved again; refused again.
        for c in (ana, ben):
            assert not await save(c)
            error = str(wraps[c.name].query_one("#wrap-up-error", Static).render())
            assert UNREACHABLE in error, error
            assert str(server.port) not in error
        for c, disposition in ((ana, "completed"), (ben, "no_answer")):
            notes = f"{c.name} typed during the outage, then saved when it was back"
            await type_wrap_up(c, wraps[c.name], disposition, notes)
            typed[notes] = disposition
            assert not await save(c)
        # Cai asks for a patient twice: told, back to Ready, nothing claimed.
        for _ in range(2):
            await press(cai.pilot, "r")
            assert cai.workspace.offer is None
            assert cai.workspace.phase == "not_ready"
        assert any(UNREACHABLE in m for m in cai.notes())
        # Three leases go by: every console's heartbeat and presence beat, each period.
        for _ in range(3):
            clock.start += timedelta(seconds=lease)
            for c in (ana, ben, cai):
                c.workspace._beat()  # what its heartbeat timer does
                c.app._present()  # what the presence timer does
                await settle(c.pilot)
        assert any("Lost touch with the database" in m for m in ana.notes())
        assert isinstance(ana.app.screen, WrapUpScreen) and isinstance(ben.app.screen, WrapUpScreen)

        server.start()

        # Back: Cai claims first (Ana's and Ben's claims ran out meanwhile: his claim may take
        # one of their patients, or sweep their claims), then the kept wrap-ups are saved: once
        # each, on time if the claim is still theirs, late (the call it was) if it is gone.
        await press(cai.pilot, "r")
        assert cai.workspace.offer is not None, visible_text(cai.app)
        expected_late = []
        for c in (ana, ben):
            offer = c.workspace.offer
            assert offer is not None
            with w.store.sessions() as s:
                held = s.scalar(
                    select(QueueEntry.patient_id).where(
                        QueueEntry.patient_id == offer.claim.patient_id,
                        QueueEntry.lease_token == offer.claim.lease_token,
                    )
                )
            if held is None:
                expected_late.append(
                    f"{c.name} typed during the outage, then saved when it was back"
                )
            assert await save(c), visible_text(c.app)
        await press(cai.pilot, "d", "a", "w")
        assert isinstance(cai.app.screen, WrapUpScreen)
        await type_wrap_up(cai, cai.app.screen, "no_answer", "cai after the outage")
        typed["cai after the outage"] = "no_answer"
        assert await save(cai), visible_text(cai.app)
        # The shift goes on: every console claims, calls and saves through its own pool.
        for n in range(2, 4):
            for c in (cai, ana, ben):
                await call_and_save(c, typed, n)

    with w.store.sessions() as s:
        stored = s.execute(select(Attempt.notes, Attempt.disposition, Attempt.late)).all()
        chains = verify_chain(s)
    counts = Counter(notes for notes, _, _ in stored)
    assert {n: k for n, k in counts.items() if k != 1} == {}, "stored more than once"
    assert {notes: d for notes, d, _ in stored} == typed  # every one typed, none other
    late = sorted(notes for notes, _, is_late in stored if is_late)
    assert late == sorted(expected_late)
    for name in AGENTS:
        assert w.drafts(name).drafts() == []
    assert chains.intact, chains.problem
