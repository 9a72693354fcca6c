"""A supervisor signs out an agent whose console is locked while holding a patient (Pilot, three
apps on one SQLite file): the locked console shows the sign-in screen within a refresh, saying
why; the patient goes back to the queue, claimable by another agent at once; the floor shows the
agent offline. The same from under an open wrap-up: nothing of the agent's session is left on
the console's screen stack, and what was typed in it is stored late at the next sign-in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import TextArea

from console.app import OutreachApp
from console.screens.lock import LockScreen
from console.screens.login import LoginScreen
from console.screens.prompt import ConfirmScreen
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from console.widgets.floor_tables import AgentsTable
from queues.store.models import AgentState, Attempt, AuditEvent, QueueEntry
from tests.e2e.helpers import choose_disposition, login, press, settle, until, user_id
from tests.world import World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def world(tmp_path: Path) -> World:
    return make_world(tmp_path, f"sqlite:///{tmp_path / 'forced.db'}", NOW, {"Alvarez": 1})


def agent_rows(app: App[Any]) -> dict[str, list[str]]:
    table = app.screen.query_one(AgentsTable)
    cells = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
    return {row[0]: row for row in cells}


async def sign_out_from_the_floor(sp: Pilot[Any], name: str) -> None:
    """The supervisor's keys: the Agents tab, the agent's row, o, and yes."""
    await sp.press("2")
    await press(sp, "f5")
    table = sp.app.screen.query_one(AgentsTable)
    table.move_cursor(row=list(agent_rows(sp.app)).index(name))
    await press(sp, "o")
    assert isinstance(sp.app.screen, ConfirmScreen)
    assert "back in the queue" in " ".join(visible_text(sp.app).split())
    await press(sp, "y")


@pytest.mark.parametrize("in_wrap_up", [False, True], ids=["previewing", "in-wrap-up"])
async def test_a_locked_agent_holding_a_patient_is_signed_out_and_the_patient_freed(
    tmp_path: Path, in_wrap_up: bool
) -> None:
    w = world(tmp_path)
    supervisor, ana, ben = (OutreachApp(w.services) for _ in range(3))
    async with (
        supervisor.run_test(size=(120, 40)) as sp,
        ana.run_test(size=(120, 40)) as a,
        ben.run_test(size=(120, 40)) as b,
    ):
        await login(a, "ana")
        await press(a, "r")
        assert "Pat Alvarez" in visible_text(ana)
        if in_wrap_up:
            await press(a, "d", "c", "w")
            assert isinstance(ana.screen, WrapUpScreen)
        ana.lock()
        await settle(a)
        assert isinstance(ana.screen, LockScreen)
        await login(b, "ben")
        await login(sp, "sue")
        await sign_out_from_the_floor(sp, "Ana")

        await until(a, lambda: isinstance(ana.screen, LoginScreen), "Ana's sign-in screen")
        await settle(a)
        assert ana.user is None
        assert len(ana.screen_stack) == 2  # the default screen and the sign-in: nothing beneath
        assert "Sign in to start your shift" in visible_text(ana)
        assert "Pat Alvarez" not in visible_text(ana)
        assert any("signed you out" in n.message for n in ana._notifications)

        await press(b, "r")  # the patient Ana held is Ben's to call at once
        assert "Pat Alvarez" in visible_text(ben)
        await press(sp, "f5")
        assert agent_rows(supervisor)["Ana"][1] == "offline"

    with w.store.sessions() as s:
        ana_id, ben_id = user_id(s, "ana"), user_id(s, "ben")
        state = s.get_one(AgentState, ana_id)
        assert state.state == "offline" and state.logout_requested_at is None
        assert s.get_one(QueueEntry, w.patients["Alvarez"]).holder_id == ben_id
        released = s.scalars(
            select(AuditEvent.patient_id).where(
                AuditEvent.action == "release_on_sign_out", AuditEvent.user_id == ana_id
            )
        ).all()
        assert released == [w.patients["Alvarez"]]


async def test_a_locked_console_no_one_signed_out_stays_locked(tmp_path: Path) -> None:
    w = world(tmp_path)
    ana = OutreachApp(w.services)
    async with ana.run_test(size=(80, 24)) as a:
        await login(a, "ana")
        await press(a, "r")
        ana.lock()
        await settle(a)
        lock = ana.screen
        assert isinstance(lock, LockScreen)
        lock._check_sign_out()  # what its timer does
        await settle(a)
        assert ana.screen is lock and ana.user is not None
    with w.store.sessions() as s:
        assert s.get_one(QueueEntry, w.patients["Alvarez"]).holder_id == user_id(s, "ana")


async def test_a_wrap_up_typed_before_the_lock_is_stored_late_at_the_next_sign_in(
    tmp_path: Path,
) -> None:
    """Signed out from under the lock with a typed wrap-up: the patient is freed at once, and
    what was typed comes back when the agent signs in again, stored once as the late call it was
    (the draft journal and the late store are console/drafts.py's and queues/outcomes.py's)."""
    w = world(tmp_path)
    supervisor, ana = OutreachApp(w.services), OutreachApp(w.services)
    async with supervisor.run_test(size=(120, 40)) as sp, ana.run_test(size=(120, 40)) as a:
        await login(a, "ana")
        await press(a, "r", "d", "c", "w")
        wrap = ana.screen
        assert isinstance(wrap, WrapUpScreen)
        await choose_disposition(a, "completed")
        wrap.query_one("#notes", TextArea).text = "Refill for Friday, she will pick it up"
        await settle(a)
        ana.lock()
        await settle(a)
        await login(sp, "sue")
        await sign_out_from_the_floor(sp, "Ana")
        await until(a, lambda: isinstance(ana.screen, LoginScreen), "Ana's sign-in screen")
        await settle(a)
        with w.store.sessions() as s:
            assert s.get_one(QueueEntry, w.patients["Alvarez"]).holder_id is None

        await login(a, "ana")  # her wrap-up comes back as typed, to be stored late
        back = ana.screen
        assert isinstance(back, WrapUpScreen), visible_text(ana)
        assert back.query_one("#notes", TextArea).text == "Refill for Friday, she will pick it up"
        await press(a, "ctrl+s")
        assert isinstance(ana.screen, WorkspaceScreen), visible_text(ana)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.patient_id, attempt.disposition, attempt.late) == (
            w.patients["Alvarez"],
            "completed",
            True,
        )
    assert w.drafts("ana").drafts() == []
