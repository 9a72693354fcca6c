"""A wrap-up's save is taken whenever the agent presses ctrl+s, and lands once: the supervisor
poll that reads while the save stores the call does not call the stored patient "released" (under
load it opened a second wrap-up for the stored call and the console sat on it: bench/next_patient.py's
saves that "timed out"), and a ctrl+s typed right after w is not dropped. Real SQLite and
PostgreSQL, the real app through Pilot; the interleaving is made with the database's own events,
never a sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from textual import events
from textual.widgets import Input, TextArea

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from queues.auth import authenticate
from queues.store.db import transaction
from queues.store.models import Attempt
from tests.e2e.helpers import choose_disposition, login, press, settle, until
from tests.world import PASSWORD, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas
BOUND_S = 20.0  # a bound on waiting for the other thread, never a pause
# The poll's first statement (queues.floor.controls.logout_requested); the save reads the whole
# agent_states row, never this column alone.
POLL_STATEMENT = "SELECT agent_states.logout_requested_at FROM agent_states"


def _wait_for(ready: Callable[[], bool], what: str) -> None:
    """On a database thread: until `ready()` holds (another thread's progress), bounded."""
    deadline = time.monotonic() + BOUND_S
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.002)


def _stored_attempts(w: Any) -> int:
    with w.store.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Attempt)) or 0)


async def test_a_supervisor_poll_reading_while_the_save_stores_the_call_releases_nobody(
    tmp_path: Path, db_url: str
) -> None:
    w = make_world(tmp_path, db_url, NOW, {"Alvarez": 1, "Brown": 3})
    engine = w.store.engine
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen)
        await press(pilot, "r", "d", "a", "w")
        assert isinstance(app.screen, WrapUpScreen)
        await choose_disposition(pilot, "no_answer")

        # The poll reads which claim the agent holds, then waits at its first statement until
        # the save has committed; the save, once committed, waits until the poll has told the
        # screen what it found. So the poll reads the lease after the save cleared it, while the
        # wrap-up is still on screen: what a loaded machine did now and then.
        committed = threading.Event()
        saver: list[int] = []
        poll: list[Any] = []

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            polled = " ".join(statement.split()).startswith(POLL_STATEMENT)
            if polled and not committed.is_set():
                _wait_for(committed.is_set, "the save's commit")
            if statement.lstrip().upper().startswith("INSERT INTO ATTEMPTS"):
                saver.append(threading.get_ident())

        def after_commit(session: Session) -> None:
            if saver and threading.get_ident() == saver[0] and not committed.is_set():
                committed.set()
                _wait_for(lambda: bool(poll) and poll[0].is_finished, "the poll's word")

        # The test's tick is the only poll: the screen's own 2 s timer, firing meanwhile, would
        # cancel it (the group is exclusive) and the save would stop waiting for its word.
        for timer in list(screen._timers):
            if getattr(timer, "_callback", None) == screen._poll_supervisor:
                timer.pause()
        event.listen(engine, "before_cursor_execute", before)
        event.listen(Session, "after_commit", after_commit)
        try:
            poll.append(screen._check_supervisor())  # the 2 s timer's tick, now
            await press(pilot, "ctrl+s")
            await until(pilot, lambda: app.screen is screen, "the save")
            await settle(pilot)
        finally:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(Session, "after_commit", after_commit)

        assert committed.is_set() and poll[0].is_finished
        assert not any(isinstance(s, WrapUpScreen) for s in app.screen_stack)
        titles = [n.title for n in app._notifications]
        assert "Patient released" not in titles, titles
        assert "Saved. Press r for your next patient" in visible_text(app)
        assert screen.offer is None and screen.check_action("ready", ()) is True
        await press(pilot, "r")  # and the shift goes on
        assert "Pat Brown" in visible_text(app)
    assert _stored_attempts(w) == 1
    w.services.close()


async def test_a_release_while_the_form_is_open_is_still_told(tmp_path: Path) -> None:
    """The other side of the guard: a supervisor's release before any save is said, and the
    wrap-up then stores the call late."""
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", NOW, {"Alvarez": 1})
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen)
        await press(pilot, "r", "d", "a", "w")
        assert isinstance(app.screen, WrapUpScreen)
        with transaction(w.store.sessions) as s:
            sue = authenticate(s, "sue", PASSWORD)
        ana = screen.user
        w.services.floor(sue).release_patient_of(ana.id, ana.display_name)
        screen._check_supervisor()  # the 2 s timer's tick, now
        await settle(pilot)
        assert "Patient released" in [n.title for n in app._notifications]
        await choose_disposition(pilot, "no_answer")
        await press(pilot, "ctrl+s")
        await until(pilot, lambda: app.screen is screen, "the late save")
        assert "Stored late" in [n.title for n in app._notifications]
    assert _stored_attempts(w) == 1
    w.services.close()


def _type_ahead(app: OutreachApp, *keys: str) -> None:
    """Keys as a terminal sends them, one right after another (Pilot.press waits between keys
    for the app to go idle, which no agent does)."""
    for key in keys:
        key_event = events.Key(key, key if len(key) == 1 else None)
        key_event.set_sender(app)
        assert app._driver is not None
        app._driver.send_message(key_event)


async def test_ctrl_s_typed_right_after_w_saves_the_suggested_outcome(tmp_path: Path) -> None:
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 't.db'}", NOW, {"Alvarez": 1})
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        screen = app.screen
        await press(pilot, "r", "d", "a")  # no answer: the wrap-up opens with it suggested
        _type_ahead(app, "w", "ctrl+s")
        await until(
            pilot,
            lambda: app.screen is screen and "Saved." in visible_text(app),
            "the typed-ahead save",
        )
    with w.store.sessions() as s:
        assert [a.disposition for a in s.scalars(select(Attempt))] == ["no_answer"]
    w.services.close()


async def test_ctrl_s_saves_from_the_notes_and_the_callback_field(tmp_path: Path) -> None:
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'f.db'}", NOW, {"Alvarez": 1, "Brown": 3})
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        screen = app.screen
        for field in ("#notes", "#callback-at"):
            await press(pilot, "r", "d", "a", "w")
            wrap = app.screen
            assert isinstance(wrap, WrapUpScreen)
            await choose_disposition(pilot, "no_answer")
            widget = wrap.query_one(field, TextArea if field == "#notes" else Input)
            wrap.query_one("#callback-fields").display = True  # shown for a callback only
            widget.focus()
            await press(pilot, "x", "ctrl+s")
            await until(pilot, lambda: app.screen is screen, f"the save from {field}")
    with w.store.sessions() as s:
        notes = [a.notes for a in s.scalars(select(Attempt).order_by(Attempt.id))]
        assert notes == ["x", ""]  # the notes field took the x; ctrl+s saved in both
    w.services.close()
