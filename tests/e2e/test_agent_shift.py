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
    return make_world(
        tmp_path, f"sqlite:///{tmp_path / 'shift.db'}", NOW, {"Alvarez": 1, "Brown": 3, "Chen": 5}
    )


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
        await pilot.press("d")  # the calling window is checked again before the number shows
        await app.workers.wait_for_complete()
        await pilot.pause()
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
        assert "Saved. Press r for your next patient" in visible_text(app)
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        card = visible_text(app)
        assert "Pat Brown" in card and "Pat Alvarez" not in card
    with w.services.sessions() as s:
        attempts = s.scalars(select(Attempt)).all()
        assert [(a.patient_id, a.disposition) for a in attempts] == [
            (w.patients["Alvarez"], "no_answer")
        ]
        entry = s.get(QueueEntry, w.patients["Alvarez"])
        assert entry is not None and entry.holder_id is None and entry.available_at > NOW
        views = s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "view_patient")
        )
        assert views == 2


async def login(pilot, username: str) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    app.screen.query_one("#username", Input).value = username
    app.screen.query_one("#password", Input).value = PASSWORD
    app.screen.query_one("#password", Input).focus()
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    """Let workers finish and their results reach the screen."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def test_callback_without_a_time_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("d")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("c", "w")
        await settle(pilot)
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        wrap.query_one("#disposition").highlighted = list(wrap.options).index("callback_requested")
        wrap.query_one("#disposition").focus()
        await pilot.press("enter")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is wrap  # still open
        assert "Callback time: enter the callback date and time" in visible_text(app)
        wrap.query_one("#callback-at", Input).value = "tomorrow-ish"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "is not a date and time like" in visible_text(app)
        with w.services.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Attempt)) == 0
        wrap.query_one("#callback-at", Input).value = "2026-12-03 14:30"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, WorkspaceScreen)
    with w.services.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert attempt.disposition == "callback_requested"
        assert attempt.call_result == "connected" and attempt.connected_at is not None
        from queues.models import Callback

        callback = s.scalars(select(Callback)).one()
        # 14:30 in Dallas on Dec 3 is 20:30 UTC.
        assert callback.due_at == datetime(2026, 12, 3, 20, 30, tzinfo=UTC)
        assert callback.owner_id is not None


async def test_pause_with_a_code_then_ready_then_log_out(tmp_path: Path) -> None:
    from queues.models import AgentState

    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        await pilot.press("p")
        await settle(pilot)
        await pilot.press("down", "enter")  # the second pause code
        await settle(pilot)
        assert "PAUSED" in visible_text(app)
        with w.services.sessions() as s:
            state = s.scalars(select(AgentState)).one()
            assert state.state == "paused" and state.pause_code is not None
        await pilot.press("r")
        await settle(pilot)
        assert "Pat Alvarez" in visible_text(app)
        # Holding a patient: no log-out, no pause until wrap-up.
        assert app.screen.check_action("sign_out", ()) is False
        await pilot.press("w")
        await settle(pilot)
        app.screen.query_one("#disposition").highlighted = 0
        app.screen.query_one("#disposition").focus()
        await pilot.press("enter", "ctrl+s")
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        assert "Sign in to start your shift" in visible_text(app)
        with w.services.sessions() as s:
            assert s.scalars(select(AgentState)).one().state == "offline"


async def test_two_consoles_never_get_the_same_patient(tmp_path: Path) -> None:
    w = world(tmp_path)
    first, second = OutreachApp(w.services), OutreachApp(w.services)
    async with first.run_test(size=(120, 40)) as p1, second.run_test(size=(120, 40)) as p2:
        await login(p1, "ana")
        await login(p2, "ben")
        await p1.press("r")
        await settle(p1)
        await p2.press("r")
        await settle(p2)
        one, two = visible_text(first), visible_text(second)
        assert "Pat Alvarez" in one and "Pat Alvarez" not in two
        assert "Pat Brown" in two


async def test_console_killed_mid_save_reopens_the_wrap_up_with_what_was_entered(
    tmp_path: Path,
) -> None:
    """The draft reaches disk before the database; a restarted console finds it again."""
    from console.drafts import DraftStore

    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        from textual.widgets import TextArea

        wrap.query_one("#disposition").highlighted = list(wrap.options).index("voicemail")
        wrap.query_one("#disposition").focus()
        await pilot.press("enter")
        wrap.query_one("#notes", TextArea).text = "Asked us to call after her shift"
        outcome = wrap._collect()
        # What the save worker writes first; the "crash" comes before the database write.
        DraftStore(tmp_path / "drafts", "ana").save(outcome)
    restarted = OutreachApp(w.services)
    async with restarted.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await pilot.press("r")
        await settle(pilot)
        wrap = restarted.screen
        assert isinstance(wrap, WrapUpScreen)
        assert "Asked us to call after her shift" in visible_text(restarted)
        assert "Chosen: Left voicemail" in visible_text(restarted)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(restarted.screen, WorkspaceScreen)
    with w.services.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert attempt.notes == "Asked us to call after her shift"
        assert attempt.disposition == "voicemail"
    assert DraftStore(tmp_path / "drafts", "ana").pending() == []
