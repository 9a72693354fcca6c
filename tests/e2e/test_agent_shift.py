"""An agent's first shift, driven through the real app with Pilot on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from textual.widgets import Input, Static

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from queues.models import Attempt, AuditEvent, QueueEntry
from tests.world import PASSWORD, World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def world(tmp_path: Path) -> World:
    return make_world(tmp_path, f"sqlite:///{tmp_path / 'shift.db'}", NOW,
                      {"Alvarez": 1, "Brown": 3, "Chen": 5})


async def sign_in(pilot, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    app.screen.query_one("#username", Input).value = username
    app.screen.query_one("#password", Input).value = password
    await pilot.press("enter")  # on the password field's sibling? focus is on username
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_wrong_password_gets_one_generic_message(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#username", Input).value = "ana"
        app.screen.query_one("#password", Input).value = "wrong-password"
        app.screen.query_one("#password", Input).focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        error = str(app.screen.query_one("#login-error", Static).render())
        assert "Sign-in failed" in error
        assert not isinstance(app.screen, WorkspaceScreen)
        # An unknown user gets the very same words.
        app.screen.query_one("#username", Input).value = "nobody"
        app.screen.query_one("#password", Input).value = "wrong-password"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert str(app.screen.query_one("#login-error", Static).render()) == error


async def test_agent_takes_patient_records_outcome_and_gets_a_different_one(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one("#username", Input).value = "ana"
        app.screen.query_one("#password", Input).value = PASSWORD
        app.screen.query_one("#password", Input).focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen)
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        card = visible_text(app)
        assert "Pat Alvarez" in card  # earliest run-out first
        assert "Refill reminder" in card
        assert screen.query_one("#meds").row_count == 1
        # Next is refused until this patient is dispositioned.
        assert screen.check_action("ready", ()) is None
        await pilot.press("d")
        await pilot.press("a")  # no answer
        await pilot.press("w")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, WrapUpScreen)
        await pilot.press("ctrl+s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, WorkspaceScreen)
        card = visible_text(app)
        assert "Pat Brown" in card
    with w.services.sessions() as s:
        attempts = s.scalars(select(Attempt)).all()
        assert [(a.patient_id, a.disposition) for a in attempts] == [
            (w.patients["Alvarez"], "no_answer")
        ]
        entry = s.get(QueueEntry, w.patients["Alvarez"])
        assert entry is not None and entry.holder_id is None and entry.available_at > NOW
        views = s.scalar(select(func.count()).select_from(AuditEvent)
                         .where(AuditEvent.action == "view_patient"))
        assert views == 2
