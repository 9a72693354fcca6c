"""A call is on this computer's disk before it is placed: a console that stops after `d` (killed,
crashed) reopens the call's wrap-up at the next sign-in, and the call is stored as the attempt it
was — it counts against the patient's caps — instead of the patient being offered for a first
call again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from queues.store.models import Attempt
from tests.e2e.helpers import choose_disposition, login, press, until
from tests.world import make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


async def test_a_console_stopped_after_dialing_reopens_the_call_and_stores_it(
    tmp_path: Path,
) -> None:
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'dial.db'}", NOW, {"Alvarez": 1})
    drafts = w.drafts("ana")
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen) and screen.offer is not None
        await press(pilot, "d")  # dialled by hand: the agent now talks on the desk phone
        await until(pilot, lambda: screen.phase == "dialing", "the dial")
        (call,) = await asyncio.to_thread(drafts.pending)
        assert call.phone_number and call.started_at is not None and call.disposition == ""
    # The console stops here, mid-call, without a wrap-up: nothing else reaches the disk.
    restarted = OutreachApp(w.services)
    async with restarted.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await until(pilot, lambda: isinstance(restarted.screen, WrapUpScreen), "the wrap-up")
        await choose_disposition(pilot, "no_answer")
        await press(pilot, "ctrl+s")
        await until(pilot, lambda: isinstance(restarted.screen, WorkspaceScreen), "the save")
    with w.store.sessions() as s:
        (attempt,) = s.scalars(select(Attempt)).all()
        assert attempt.uid == call.uid
        assert attempt.disposition == "no_answer"
        assert attempt.phone_number == call.phone_number
    assert drafts.pending() == []
