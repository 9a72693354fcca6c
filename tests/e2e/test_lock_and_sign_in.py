"""The idle lock and sign-in through the real app (Pilot, SQLite file): the lock shows nothing of
the patient (checked on the SVG screenshot), blocks the palette, gives the patient back after the
grace; lockout, slowing and TOTP on the sign-in screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
from sqlalchemy import select
from textual.command import CommandPalette
from textual.widgets import Input, Static

from console.app import OutreachApp
from console.screens.lock import LockScreen
from console.screens.login import LoginScreen
from console.screens.workspace import WorkspaceScreen
from queues.auth import authenticate, enroll_totp, signed_in
from queues.errors import AuthenticationFailed
from queues.store.db import transaction
from queues.store.models import AgentState, AuditEvent, QueueEntry, SignInSource, User
from queues.timeutil import utcnow
from tests.e2e.helpers import login, press, settle, sign_in, until
from tests.world import PASSWORD, World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def world(tmp_path: Path) -> World:
    return make_world(tmp_path, f"sqlite:///{tmp_path / 'lock.db'}", NOW, {"Alvarez": 1})


def error_text(app: OutreachApp) -> str:
    return str(app.screen.query_one("#login-error", Static).render())


async def test_the_lock_screen_shows_no_patient_data_and_no_palette(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        shown = visible_text(app)
        assert "Pat Alvarez" in shown
        # Idle past the limit: the console locks itself.
        app._last_input -= 16 * 60
        app._check_idle()
        await settle(pilot)
        assert isinstance(app.screen, LockScreen)
        svg = app.export_screenshot()
        for private in ("Alvarez", "Pat ", "214", "555", "1955", "Lisinopril", "T0000", "MRN"):
            assert private not in svg, private
        assert "Console locked" in visible_text(app)
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert not isinstance(app.screen, CommandPalette)
        assert isinstance(app.screen, LockScreen)
        assert list(app.get_system_commands(app.screen)) == []  # type: ignore[arg-type]
        # The same password again: the patient is back as it was.
        app.screen.query_one("#unlock-password", Input).value = PASSWORD
        await press(pilot, "enter")
        assert isinstance(app.screen, WorkspaceScreen)
        assert "Pat Alvarez" in visible_text(app)


async def test_locked_past_the_grace_the_patient_goes_back_to_the_queue(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        app.lock()
        await settle(pilot)
        lock = app.screen
        assert isinstance(lock, LockScreen)
        assert lock.release_after_seconds == w.services.settings.ui.lock_release_minutes * 60
        lock.release_patient()  # what its timer does when the grace is over
        await settle(pilot)
        with w.store.sessions() as s:
            entry = s.get(QueueEntry, w.patients["Alvarez"])
            assert entry is not None and entry.holder_id is None
            assert s.scalar(select(AuditEvent.id).where(AuditEvent.action == "release_on_lock"))
        assert isinstance(app.screen, LockScreen)  # still locked


async def test_five_failures_lock_the_account_on_the_sign_in_screen(tmp_path: Path) -> None:
    w = world(tmp_path)
    # Four failures from elsewhere (so this console is not slowed first)…
    for k in range(4):
        try:
            with transaction(w.store.sessions) as s:
                authenticate(s, "ana", "wrong", source=f"elsewhere-{k}", now=utcnow())
        except AuthenticationFailed:
            pass
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "ana", "still-wrong")  # …the fifth locks the account
        await settle(pilot)
        generic = error_text(app)
        assert "After 5 failed tries an account waits 15 minutes" in generic
        await sign_in(pilot, "ana", PASSWORD)
        await settle(pilot)
        assert isinstance(app.screen, LoginScreen)
        assert error_text(app) == generic  # the right password, the same words: locked
    with w.store.sessions() as s:
        alerts = w.services.accounts.sign_in_alerts(
            signed_in(s.scalars(select(User).where(User.username == "sue")).one())
        )
    assert [a.username for a in alerts.locked] == ["ana"]
    assert alerts.locked[0].until > utcnow() + timedelta(minutes=14)


async def test_a_console_that_keeps_failing_is_slowed(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "nobody", "guess")
        await settle(pilot)
        # Nine more failures from this console just now (the wait doubles each time: 60 s).
        with transaction(w.store.sessions) as s:
            place = s.get(SignInSource, w.services.accounts.source)
            assert place is not None and place.failures == 1
            place.failures, place.last_failed_at = 10, utcnow()
        await sign_in(pilot, "ana", PASSWORD)
        await settle(pilot)
        assert "Too many failed sign-ins from here: wait" in error_text(app)
        assert isinstance(app.screen, LoginScreen)


async def test_totp_on_the_sign_in_screen(tmp_path: Path) -> None:
    w = world(tmp_path)
    with transaction(w.store.sessions) as s:
        secret = pyotp.parse_uri(enroll_totp(s, "ana")).secret
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "ana", PASSWORD)
        await settle(pilot)
        code = app.screen.query_one("#code", Input)
        assert code.display and "6-digit code" in error_text(app)
        code.value = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
        code.focus()
        await press(pilot, "enter")
        assert "check the code" in error_text(app)
        await sign_in(pilot, "ana", PASSWORD)
        await settle(pilot)
        code = app.screen.query_one("#code", Input)
        code.value = pyotp.TOTP(secret).now()
        code.focus()
        await press(pilot, "enter")
        assert isinstance(app.screen, WorkspaceScreen)


def ask_to_log_out(w: World, agent: str) -> None:
    """What the supervisor's `o` on the floor does (queues.floor.controls.request_logout)."""
    from queues.floor import controls

    with transaction(w.store.sessions) as s:
        sue = signed_in(s.scalars(select(User).where(User.username == "sue")).one())
        ana = s.scalars(select(User.id).where(User.username == agent)).one()
        controls.request_logout(s, sue, ana, utcnow())


async def test_a_supervisor_signs_out_a_locked_console_within_one_refresh(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        app.lock()
        await settle(pilot)
        assert isinstance(app.screen, LockScreen)
        ask_to_log_out(w, "ana")
        await until(pilot, lambda: isinstance(app.screen, LoginScreen), "the sign-in screen")
        await settle(pilot)
        assert isinstance(app.screen, LoginScreen) and app.user is None
        assert len(app.screen_stack) == 2  # the default screen and the sign-in: nothing beneath
        assert "Sign in to start your shift" in visible_text(app)
    with w.store.sessions() as s:
        ana = s.scalars(select(User.id).where(User.username == "ana")).one()
        state = s.get(AgentState, ana)
        assert state is not None and state.state == "offline"
        assert state.logout_requested_at is None  # done, as asked
