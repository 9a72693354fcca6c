"""The idle lock: after the configured idle time the console shows nothing of the patient until
the same user signs in again (45 CFR 164.312(a)(2)(iii)); locked past the grace, the patient goes
back to the queue (the draft wrap-up is kept on disk).

A full screen, not a box over the workspace: nothing beneath is drawn while it is up.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from console.screens.base import WorkerFailures
from queues.views.user import SignedInUser


class LockScreen(WorkerFailures, Screen[None]):
    # A Screen, not a ModalScreen: it is opaque, so nothing of the workspace beneath is drawn.
    AUTO_FOCUS = "#unlock-password"

    def __init__(self, user: SignedInUser, release_after_seconds: float = 300) -> None:
        super().__init__()
        self.user = user
        self.release_after_seconds = release_after_seconds
        self.released = False

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="lock-box"):
            yield Static("Console locked", id="lock-title")
            yield Static(f"Signed in as {self.user.display_name}. Enter your password to go on.")
            yield Input(id="unlock-password", password=True, placeholder="password")
            yield Static("", id="lock-error")

    def on_mount(self) -> None:
        self.set_timer(self.release_after_seconds, self.release_patient)

    def release_patient(self) -> None:
        """The grace is over: give the held patient back (the console stays locked)."""
        self._release()

    @work(thread=True, exclusive=True, exit_on_error=False, group="lock-release")
    def _release(self) -> None:
        from console.app import OutreachApp

        app = self.app
        assert isinstance(app, OutreachApp)
        app.services.accounts.release_on_lock(self.user)
        self.released = True

    @on(Input.Submitted)
    def _unlock(self, event: Input.Submitted) -> None:
        self._check(event.value)

    @work(thread=True, exclusive=True, exit_on_error=False, group="unlock")
    def _check(self, password: str) -> None:
        from console.app import OutreachApp

        app = self.app
        assert isinstance(app, OutreachApp)
        app.services.accounts.unlock(self.user, password)
        app.call_from_thread(self.dismiss)

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        if group == "lock-release":
            return  # the lease runs out by itself; the workspace says so when unlocked
        self._fail(message)

    def _fail(self, message: str) -> None:
        self.query_one("#lock-error", Static).update(message)
        self.query_one("#unlock-password", Input).value = ""
