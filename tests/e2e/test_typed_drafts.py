"""Nothing typed is lost: the wrap-up's fields reach the draft journal as they are typed, a console
killed with kill -9 comes back with every field, a wrap-up whose claim is gone is stored late (once,
marked late, counted against the caps, its draft cleared), and a wrap-up opened while the database
was away reads its disposition list when it is back."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from textual.widgets import Checkbox, Input, Static, TextArea

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import STORED_LATE, WrapUpScreen
from queues.compliance import patient_verdict
from queues.store.db import transaction
from queues.store.models import Attempt, Callback, QueueEntry
from tests.e2e.helpers import choose_disposition, login, press, settle, until
from tests.e2e.test_database_away import database_refusing
from tests.e2e.typed_console import CALLBACK, DISPOSITION, NOTES, NOW, typed_in_full
from tests.world import World, make_world, visible_text

ROOT = Path(__file__).resolve().parents[2]
# Only a guard against a child that hangs (the test then fails saying so), never a measure.
CHILD_GUARD_SECONDS = 300


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shift.db'}"
    return str(request.getfixturevalue("pg_url"))


def _world(tmp_path: Path, url: str) -> World:
    return make_world(tmp_path, url, NOW, {"Alvarez": 1, "Brown": 3})


def _typed_then_killed(tmp_path: Path, url: str) -> str:
    """Run tests/e2e/typed_console.py, let it type the whole wrap-up, kill -9 it; its draft uid."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.typed_console", str(tmp_path), url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        with selectors.DefaultSelector() as ready:
            ready.register(child.stdout, selectors.EVENT_READ)
            if not ready.select(CHILD_GUARD_SECONDS):
                raise AssertionError("the console never finished typing")
        line = child.stdout.readline()
        if not line.startswith("TYPED "):
            child.kill()
            _, err = child.communicate()
            raise AssertionError(f"the console stopped before typing it all:\n{err}")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return line.split()[1]


async def test_killed_with_the_wrap_up_typed_reopens_every_field_at_sign_in(
    tmp_path: Path, url: str
) -> None:
    w = _world(tmp_path, url)
    uid = _typed_then_killed(tmp_path, url)
    drafts = w.drafts("ana")
    (kept,) = drafts.drafts()
    assert kept.outcome.uid == uid and typed_in_full(kept)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")  # no key: her held patient comes back with the form
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        assert "Wrap-up — Pat Alvarez" in visible_text(app)
        assert "Chosen: Reached – asked for a callback" in visible_text(app)
        assert wrap.query_one("#notes", TextArea).text == NOTES
        assert wrap.query_one("#callback-at", Input).value == CALLBACK
        assert wrap.query_one("#callback-mine", Checkbox).value is False
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.uid, attempt.disposition, attempt.notes, attempt.late) == (
            uid,
            DISPOSITION,
            NOTES,
            False,
        )
        callback = s.scalars(select(Callback)).one()
        assert callback.owner_id is None  # "only I call back" was unticked
        assert f"{callback.due_at:%Y-%m-%d}" == "2026-12-03"
    assert drafts.drafts() == []


async def test_killed_and_released_meanwhile_the_wrap_up_is_stored_late_at_sign_in(
    tmp_path: Path, url: str
) -> None:
    """The supervisor released the patient while the console was dead: at sign-in the form opens
    as typed, and its save is the call it was, marked late."""
    w = _world(tmp_path, url)
    uid = _typed_then_killed(tmp_path, url)
    alvarez = w.patients["Alvarez"]
    with transaction(w.store.sessions) as s:  # what the floor's release does to the entry
        s.execute(
            update(QueueEntry)
            .where(QueueEntry.patient_id == alvarez)
            .values(holder_id=None, lease_token=None, lease_expires_at=None, claimed_at=None)
        )
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        assert wrap.query_one("#notes", TextArea).text == NOTES
        assert any(
            "was not saved before the console stopped" in n.message for n in app._notifications
        )
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
        assert any(n.message == STORED_LATE for n in app._notifications)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.uid, attempt.notes, attempt.late) == (uid, NOTES, True)
        # A connected call today: the daily cap is spent.
        assert not patient_verdict(s, alvarez, NOW).callable
    assert w.drafts("ana").drafts() == []


async def test_a_wrap_up_whose_patient_was_released_is_stored_once_and_marked_late(
    tmp_path: Path, url: str
) -> None:
    w = _world(tmp_path, url)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "c")
        await press(pilot, "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        await choose_disposition(pilot, "completed")
        wrap.query_one("#notes", TextArea).text = "Refill for Friday"
        await settle(pilot)
        alvarez = w.patients["Alvarez"]
        with transaction(w.store.sessions) as s:  # a supervisor releases her meanwhile
            s.execute(
                update(QueueEntry)
                .where(QueueEntry.patient_id == alvarez)
                .values(holder_id=None, lease_token=None, lease_expires_at=None, claimed_at=None)
            )
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
        assert any(n.message == STORED_LATE for n in app._notifications)
        assert "Saved. Press r for your next patient" in visible_text(app)
        assert w.drafts("ana").drafts() == []
        await press(pilot, "r")  # the next patient: Brown (Alvarez is done for today)
        assert "Pat Brown" in visible_text(app)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.patient_id, attempt.notes, attempt.late) == (
            alvarez,
            "Refill for Friday",
            True,
        )


async def test_a_wrap_up_opened_while_the_database_was_away_reads_its_list_when_it_is_back(
    tmp_path: Path, pg_url: str
) -> None:
    w = _world(tmp_path, pg_url)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "a")  # no answer
        with database_refusing(pg_url):
            await press(pilot, "w")
            wrap = app.screen
            assert isinstance(wrap, WrapUpScreen)
            error = str(wrap.query_one("#wrap-up-error", Static).render())
            assert "The disposition list could not be read" in error, error
            assert "the database is unreachable — your work is kept" in error
            assert "127.0.0.1" not in error and "postgres" not in error
            assert wrap.options == {}
            wrap.query_one("#notes", TextArea).text = "No answer, no voicemail box"
            await settle(pilot)
        # Back: the form reads the list by itself (its timer), and the message goes.
        await until(pilot, lambda: bool(wrap.options), "the disposition list")
        await settle(pilot)
        assert str(wrap.query_one("#wrap-up-error", Static).render()) == ""
        chosen = str(wrap.query_one("#disposition-chosen", Static).render())
        assert chosen == "Chosen: No answer (suggested)", chosen
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.disposition, attempt.notes) == ("no_answer", "No answer, no voicemail box")


async def test_a_call_made_then_released_opens_its_wrap_up_to_be_stored_late(
    tmp_path: Path,
) -> None:
    """The supervisor releases a patient the agent has just called: the call is not dropped —
    the wrap-up opens, and its save is stored late."""
    from queues.floor import controls
    from tests.e2e.test_console_call import _supervisor

    w = _world(tmp_path, f"sqlite:///{tmp_path / 'shift.db'}")
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "a")  # no answer
        sue = _supervisor(w)
        with transaction(w.store.sessions) as s:
            controls.release_lease(s, sue, w.patients["Alvarez"], NOW)  # type: ignore[arg-type]
        await until(pilot, lambda: isinstance(app.screen, WrapUpScreen), "the wrap-up to open")
        await settle(pilot)
        assert any("stored as a late call" in n.message for n in app._notifications)
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
        assert any(n.message == STORED_LATE for n in app._notifications)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.disposition, attempt.late) == ("no_answer", True)


async def test_back_to_the_call_and_again_carries_on_with_what_was_typed(tmp_path: Path) -> None:
    w = _world(tmp_path, f"sqlite:///{tmp_path / 'shift.db'}")
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "c")
        await press(pilot, "w")
        first = app.screen
        assert isinstance(first, WrapUpScreen)
        await choose_disposition(pilot, "refused")
        first.query_one("#notes", TextArea).text = "Not today, try next week"
        await settle(pilot)
        await press(pilot, "escape")  # back to the call
        assert isinstance(app.screen, WorkspaceScreen)
        await press(pilot, "w")
        again = app.screen
        assert isinstance(again, WrapUpScreen) and again is not first
        assert again.draft.uid == first.draft.uid  # one draft, one attempt
        assert again.query_one("#notes", TextArea).text == "Not today, try next week"
        assert again.chosen == "refused"
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.uid, attempt.disposition) == (first.draft.uid, "refused")
    assert w.drafts("ana").drafts() == []


async def test_a_draft_whose_save_went_through_is_cleared_at_sign_in(tmp_path: Path) -> None:
    """Killed between the database's commit and removing the draft: at sign-in the draft is seen
    answered and removed; no wrap-up opens again, the call is stored once."""
    w = _world(tmp_path, f"sqlite:///{tmp_path / 'shift.db'}")
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "c")
        await press(pilot, "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        await choose_disposition(pilot, "completed")
        sent = wrap._collect()
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
    drafts = w.drafts("ana")
    drafts.save(sent)  # as the save worker left it, had the kill come before its clean-up
    again = OutreachApp(w.services)
    async with again.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        assert isinstance(again.screen, WorkspaceScreen)
        assert drafts.drafts() == []
    with w.store.sessions() as s:
        assert len(s.scalars(select(Attempt)).all()) == 1


async def test_a_wrap_up_whose_lease_ran_out_and_was_taken_is_stored_late_beside_the_new_holder(
    tmp_path: Path, url: str
) -> None:
    """Ana's lease ran out while she typed (her heartbeats could not reach the database) and Ben's
    console took the patient: her save is the call it was, marked late; Ben keeps the patient."""
    w = _world(tmp_path, url)
    ana_app, ben_app = OutreachApp(w.services), OutreachApp(w.services)
    async with ana_app.run_test(size=(120, 40)) as ana, ben_app.run_test(size=(120, 40)) as ben:
        await login(ana, "ana")
        await press(ana, "r")
        await press(ana, "d")
        await press(ana, "c")
        await press(ana, "w")
        wrap = ana_app.screen
        assert isinstance(wrap, WrapUpScreen)
        await choose_disposition(ana, "completed")
        wrap.query_one("#notes", TextArea).text = "Will pick up Friday"
        await settle(ana)
        alvarez = w.patients["Alvarez"]
        with transaction(w.store.sessions) as s:  # the lease ran out
            s.execute(
                update(QueueEntry)
                .where(QueueEntry.patient_id == alvarez)
                .values(lease_expires_at=NOW - timedelta(seconds=1), available_at=NOW)
            )
        await login(ben, "ben")
        await press(ben, "r")
        assert "Pat Alvarez" in visible_text(ben_app)  # hers no longer: the best is his now
        await press(ana, "ctrl+s")
        assert isinstance(ana_app.screen, WorkspaceScreen)
        assert any(n.message == STORED_LATE for n in ana_app._notifications)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert (attempt.notes, attempt.late) == ("Will pick up Friday", True)
        entry = s.get_one(QueueEntry, alvarez)
        assert entry.holder_id is not None and entry.holder_id != attempt.user_id
        assert not patient_verdict(s, alvarez, NOW).callable  # a connected call today: capped
    assert w.drafts("ana").drafts() == []
