"""An agent's first shift, driven through the real app with Pilot on a real SQLite file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from textual.geometry import Region
from textual.widgets import Input, Static

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from console.widgets.medications import MedicationsTable
from console.widgets.patient_card import PatientCard
from console.widgets.script_panel import ScriptPanel
from queues.store.models import Attempt, AuditEvent, QueueEntry
from tests.e2e.helpers import choose_disposition, login, press, settle, sign_in
from tests.world import World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def world(tmp_path: Path) -> World:
    return make_world(
        tmp_path, f"sqlite:///{tmp_path / 'shift.db'}", NOW, {"Alvarez": 1, "Brown": 3, "Chen": 5}
    )


async def test_the_footer_may_ask_a_workspace_what_works_before_it_is_drawn(
    tmp_path: Path,
) -> None:
    # As the console switches to the workspace, the footer asks the new screen which keys work
    # before the screen is composed; that first question drew the status line, which was not
    # there yet, and the console stopped with an error (seen in CI, a timing race).
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        assert app.user is not None
        fresh = WorkspaceScreen(app.user)  # not composed
        assert fresh.check_action("ready", ()) is True
        assert fresh.check_action("dial", ()) is False


async def test_wrong_password_gets_one_generic_message(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "ana", "wrong-password")
        await settle(pilot)
        error = str(app.screen.query_one("#login-error", Static).render())
        assert "Sign-in failed" in error
        assert not isinstance(app.screen, WorkspaceScreen)
        # An unknown user gets the very same words.
        await sign_in(pilot, "nobody", "wrong-password")
        await settle(pilot)
        assert str(app.screen.query_one("#login-error", Static).render()) == error


async def test_agent_takes_patient_records_outcome_and_gets_a_different_one(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen)
        await press(pilot, "r")
        card = visible_text(app)
        assert "Pat Alvarez" in card  # earliest run-out first
        assert "Refill reminder" in card
        assert screen.query_one("#meds", MedicationsTable).row_count == 1
        # Next is refused until this patient is dispositioned.
        assert screen.check_action("ready", ()) is False  # hidden: the footer offers what works
        await press(pilot, "d")  # the calling window is checked again before the number shows
        await press(pilot, "a")  # no answer
        panel = screen.query_one(ScriptPanel)
        assert "The call did not connect: the script is not needed" in panel.shown_text()
        assert screen.check_action("script_forward", ()) is None  # dimmed: nothing to say
        await press(pilot, "w")
        assert isinstance(app.screen, WrapUpScreen)
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
        assert "Saved. Press r for your next patient" in visible_text(app)
        await press(pilot, "r")
        card = visible_text(app)
        assert "Pat Brown" in card and "Pat Alvarez" not in card
    with w.store.sessions() as s:
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


async def test_callback_without_a_time_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "c", "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        await choose_disposition(pilot, "callback_requested")
        await press(pilot, "ctrl+s")
        assert app.screen is wrap  # still open
        assert "Callback time: enter the callback date and time" in visible_text(app)
        wrap.query_one("#callback-at", Input).value = "tomorrow-ish"
        await press(pilot, "ctrl+s")
        assert "is not a date and time like" in visible_text(app)
        with w.store.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Attempt)) == 0
        wrap.query_one("#callback-at", Input).value = "2026-12-03 14:30"
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert attempt.disposition == "callback_requested"
        assert attempt.call_result == "connected" and attempt.connected_at is not None
        from queues.store.models import Callback

        callback = s.scalars(select(Callback)).one()
        # 14:30 in Dallas on Dec 3 is 20:30 UTC.
        assert callback.due_at == datetime(2026, 12, 3, 20, 30, tzinfo=UTC)
        assert callback.owner_id is not None


async def test_pause_with_a_code_then_ready_then_log_out(tmp_path: Path) -> None:
    from queues.store.models import AgentState

    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "p")
        await press(pilot, "down", "enter")  # the second pause code
        assert "PAUSED" in visible_text(app)
        with w.store.sessions() as s:
            state = s.scalars(select(AgentState)).one()
            assert state.state == "paused" and state.pause_code is not None
        await press(pilot, "r")
        assert "Pat Alvarez" in visible_text(app)
        # Holding a patient: no log-out, no pause until wrap-up.
        assert app.screen.check_action("sign_out", ()) is False
        await press(pilot, "w")
        await choose_disposition(pilot)
        await press(pilot, "ctrl+s")
        await press(pilot, "p")
        await press(pilot, "enter")
        await press(pilot, "L")
        assert "Sign in to start your shift" in visible_text(app)
        with w.store.sessions() as s:
            assert s.scalars(select(AgentState)).one().state == "offline"


async def test_two_consoles_never_get_the_same_patient(tmp_path: Path) -> None:
    w = world(tmp_path)
    first, second = OutreachApp(w.services), OutreachApp(w.services)
    async with first.run_test(size=(120, 40)) as p1, second.run_test(size=(120, 40)) as p2:
        await login(p1, "ana")
        await login(p2, "ben")
        await press(p1, "r")
        await press(p2, "r")
        one, two = visible_text(first), visible_text(second)
        assert "Pat Alvarez" in one and "Pat Alvarez" not in two
        assert "Pat Brown" in two


async def test_console_killed_mid_save_reopens_the_wrap_up_with_what_was_entered(
    tmp_path: Path,
) -> None:
    """The draft reaches disk as it is typed, before the database; a restarted console finds it
    again (a real kill -9 is in tests/e2e/test_typed_drafts.py)."""
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        from textual.widgets import TextArea

        await choose_disposition(pilot, "voicemail")
        wrap.query_one("#notes", TextArea).text = "Asked us to call after her shift"
        await settle(pilot)
        assert wrap._writer is not None
        assert await asyncio.to_thread(wrap._writer.flush, 10)
        # On disk already, before Save: the "crash" comes before the database write.
        (draft,) = w.drafts("ana").pending()
        assert draft.notes == "Asked us to call after her shift"
    restarted = OutreachApp(w.services)
    async with restarted.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")  # the held patient comes back with the form, no key needed
        wrap = restarted.screen
        assert isinstance(wrap, WrapUpScreen)
        assert "Asked us to call after her shift" in visible_text(restarted)
        assert "Chosen: Left voicemail" in visible_text(restarted)
        await press(pilot, "ctrl+s")
        assert isinstance(restarted.screen, WorkspaceScreen)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert attempt.notes == "Asked us to call after her shift"
        assert attempt.disposition == "voicemail"
    assert w.drafts("ana").pending() == []


async def test_why_this_patient_is_on_screen_at_80x24(tmp_path: Path) -> None:
    """The smallest supported terminal still shows who, whether the caregiver may hear health
    information, and why the patient is in the queue — before the phones and the pharmacy."""
    from queues.store.models import Patient

    w = world(tmp_path)
    with w.store.sessions.begin() as s:
        pat = s.scalars(select(Patient).where(Patient.last_name == "Alvarez")).one()
        pat.caregiver_name, pat.caregiver_relation = "Rosa Alvarez", "daughter"
        pat.caregiver_phone, pat.caregiver_authorized = "+12145550199", False
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        card = app.screen.query_one(PatientCard)
        lines = card.render_lines(Region(0, 0, card.size.width, card.size.height))
        seen = " ".join(" ".join(strip.text for strip in lines).split())  # what the card shows
        assert "Pat Alvarez" in seen
        assert "NOT authorized for health information" in seen
        assert "Why this patient" in seen
        assert "Refill reminder:" in seen
        meds = app.screen.query_one(MedicationsTable)
        shown = meds.render_lines(Region(0, 0, meds.size.width, meds.size.height))
        assert "Runs out" in shown[1].text  # under the border: the date a refill call is about


async def test_the_next_key_is_drawn_whole_at_80x24(tmp_path: Path) -> None:
    """Beside the big number, the dial bar's instruction fits 80 columns with its key; the script
    says which keys move it on (an answer field in focus hides the footer's)."""
    app = OutreachApp(world(tmp_path).services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        # The screen as drawn: a sentence cut by the big digits or the panel's edge fails here.
        assert "Dial it on your phone, then press d." in visible_text(app)
        await press(pilot, "d")
        assert "c connected · a no answer · b busy" in visible_text(app)
        await press(pilot, "c")
        assert "Connected: follow the script; w wraps up." in visible_text(app)
        assert "] next step" in visible_text(app)  # the greeting is said, then the agent goes on
        await press(pilot, "right_square_bracket")
        assert "1–6: their answer" in visible_text(app)


async def test_between_patients_the_clock_is_the_pharmacys(tmp_path: Path) -> None:
    """The calling windows run on the patients' time: before the first patient and after a saved
    call the status line shows the assigned pharmacy's time, not the machine's (UTC here)."""
    app = OutreachApp(world(tmp_path).services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        status = str(app.screen.query_one("#status-line", Static).render())
        assert "pharmacy time Wed 10:0" in status and "CST" in status  # 16:00 UTC in Dallas
        assert "UTC" not in status
