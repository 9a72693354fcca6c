"""Once an agent is signed in, the console keeps nothing of the sign-in: the sign-in screen (its
password field) and the worker that checked the password are let go, so the typed password is not
reachable from the running console all shift (a memory dump or a debugger would find it)."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path

from textual.widgets import Input
from textual.worker import Worker

from console.app import OutreachApp
from console.screens.login import LoginScreen
from console.screens.workspace import WorkspaceScreen
from tests.e2e.helpers import login
from tests.world import PASSWORD, make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def _holding_password() -> list[str]:
    """What alive in this process still holds the typed password, by kind."""
    gc.collect()
    held = []
    for o in gc.get_objects():
        if isinstance(o, LoginScreen):
            held.append("the sign-in screen")
        elif isinstance(o, Input) and o.value == PASSWORD:
            held.append("a password field")
        elif isinstance(o, Worker) and PASSWORD in getattr(o._work, "args", ()):
            held.append(f"worker {o.name!r}")
    return held


async def test_after_sign_in_nothing_holds_the_password(tmp_path: Path) -> None:
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", NOW, {"Alvarez": 1})
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        assert isinstance(app.screen, WorkspaceScreen)
        await pilot.pause()
        gc.unfreeze()  # what the console froze after sign-in is looked at too
        assert _holding_password() == []
